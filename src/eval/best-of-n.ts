// Best-of-N sampling as a baseline policy: draw N completions from the reference model and keep
// the one with the highest reward (ties broken uniformly at random).
//
// Its reward and KL follow from the reference's reward distribution alone. Per prompt, let the
// reward take values v_1 < ... < v_K with probabilities p_j under pi_ref, F_j = p_1 + ... + p_j.
// The best of N has reward v_j with probability q_j = F_j^N - F_{j-1}^N, and given that reward it
// is distributed as pi_ref restricted to {y : r(y) = v_j}. So pi_BoN(y) / pi_ref(y) = q_j / p_j, and
//   E[reward] = sum_j q_j v_j,   KL(pi_BoN || pi_ref) = sum_j q_j log(q_j / p_j),
// which is at most log N - (N - 1) / N (reached when no two completions tie; Beirami et al. 2024,
// arXiv:2401.01879). Its win rate against pi_ref's own samples (a tie counts 1/2) is
// sum_j q_j (F_{j-1} + p_j / 2),   N / (N + 1) when no two completions tie. A Monte-Carlo estimate with pi_ref's
// log-probs is no use here: the samples
// come from pi_ref, and log pi_ref - log pi_ref is 0 whatever N is.
// With p_j estimated from M samples of pi_ref per prompt (the empirical distribution), both sums
// are computed exactly for that distribution; M should be a few times N.

import { meanEstimate, type MeanEstimate } from './kl.js';

/** log N - (N - 1) / N: the KL of best-of-N when rewards never tie. */
export function bestOfNKlBound(n: number): number {
  return Math.log(n) - (n - 1) / n;
}

/** Index of the highest reward (the first one on ties): what best-of-N keeps from one group. */
export function pickBest(rewards: readonly number[]): number {
  if (rewards.length === 0) throw new Error('pickBest: no candidates');
  let best = 0;
  for (let i = 1; i < rewards.length; i++) if (rewards[i] > rewards[best]) best = i;
  return best;
}

/** Expected reward, KL and win rate of best-of-n over the empirical distribution of one prompt's rewards. */
export function bestOfNOnePrompt(
  rewards: readonly number[],
  n: number,
): { reward: number; kl: number; winRate: number } {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`bestOfN: n must be an integer >= 1, got ${n}`);
  const M = rewards.length;
  if (M === 0) throw new Error('bestOfN: a prompt has no reference samples');
  const sorted = [...rewards].sort((a, b) => a - b);
  let reward = 0,
    kl = 0,
    winRate = 0,
    below = 0;
  for (let i = 0; i < M;) {
    let j = i;
    while (j < M && sorted[j] === sorted[i]) j++;
    const p = (j - i) / M,
      F = j / M,
      Fprev = below;
    const q = F ** n - Fprev ** n;
    reward += q * sorted[i];
    winRate += q * (Fprev + p / 2);
    if (q > 0) kl += q * Math.log(q / p);
    below = F;
    i = j;
  }
  return { reward, kl: Math.max(0, kl), winRate };
}

/** Best-of-n averaged over prompts: `rewards[i]` holds the reference samples' rewards for prompt i. */
export function bestOfN(
  rewards: readonly (readonly number[])[],
  n: number,
): { reward: number; kl: number; klBound: number; winRate: MeanEstimate } {
  if (rewards.length === 0) throw new Error('bestOfN: no prompts');
  const each = rewards.map((row) => bestOfNOnePrompt(row, n));
  const mean = (f: (e: { reward: number; kl: number }) => number) => each.reduce((s, e) => s + f(e), 0) / each.length;
  return {
    reward: mean((e) => e.reward),
    kl: mean((e) => e.kl),
    klBound: bestOfNKlBound(n),
    winRate: meanEstimate(each.map((e) => e.winRate)),
  };
}
