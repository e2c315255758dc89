// Advantages of sampled completions from their rewards: GRPO's group-normalised reward
// (arXiv:2402.03300, Sec. 4.1.2) and RLOO's leave-one-out baseline (arXiv:2402.14740, Eq. 5).
// Rows come in groups of G consecutive completions of one prompt. Plain arrays, float64.

/** Mean of xs. */
export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Unbiased standard deviation (torch.std, Bessel's correction); NaN for fewer than 2 values. */
export function std(xs: ArrayLike<number>): number {
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

function groups(rewards: readonly number[], G: number): number[][] {
  if (rewards.length % G !== 0) throw new Error(`advantages: ${rewards.length} rewards are not whole groups of ${G}`);
  return Array.from({ length: rewards.length / G }, (_, g) => rewards.slice(g * G, (g + 1) * G));
}

export type ScaleRewards = 'group' | 'batch' | 'none';

export interface Advantages {
  advantages: number[];
  /** Per row: whether the std used (group or batch) is 0, TRL's frac_reward_zero_std. */
  stdZero: boolean[];
}

/**
 * GRPO: A_i = r_i - mean(group), divided by (std + 1e-4) of the group (group), of the whole batch
 * (batch), or not at all (none; the group std still decides stdZero), as TRL 1.13.
 */
export function groupAdvantages(rewards: readonly number[], G: number, scale: ScaleRewards): Advantages {
  const advantages: number[] = [],
    stdZero: boolean[] = [];
  const batchStd = rewards.length > 1 ? std(rewards) : 0;
  for (const g of groups(rewards, G)) {
    const m = mean(g),
      s = scale === 'batch' ? batchStd : std(g);
    for (const r of g) {
      advantages.push(scale === 'none' ? r - m : (r - m) / (s + 1e-4));
      stdZero.push(Math.abs(s) <= 1e-8); // torch.isclose(s, 0)
    }
  }
  return { advantages, stdZero };
}

/**
 * RLOO: A_i = r_i - mean of the other G - 1 rewards of the group; with normalize, then
 * standardised over the batch ((A - mean) / (std + 1e-4)). stdZero: the group's reward std is 0.
 */
export function leaveOneOutAdvantages(rewards: readonly number[], G: number, normalize: boolean): Advantages {
  let advantages: number[] = [];
  const stdZero: boolean[] = [];
  for (const g of groups(rewards, G)) {
    const total = g.reduce((a, b) => a + b, 0),
      s = std(g);
    for (const r of g) {
      advantages.push(r - (total - r) / (G - 1));
      stdZero.push(Math.abs(s) <= 1e-8);
    }
  }
  if (normalize) {
    const m = mean(advantages),
      s = std(advantages);
    advantages = advantages.map((a) => (a - m) / (s + 1e-4));
  }
  return { advantages, stdZero };
}
