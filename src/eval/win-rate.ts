// Win rate of a policy against a baseline, judged by a scalar reward: the DPO paper's second
// measure (arXiv:2305.18290, Sec. 6.2 and Fig. 2 right: win rates against reference summaries and
// the SFT model, judged by GPT-4; here the reward judges). Per prompt every policy sample meets
// every baseline sample: a higher reward wins (1), an equal one ties (1/2). The rate is the mean
// over prompts, with its standard error across prompts (samples of one prompt are not independent
// comparisons). A policy against its own samples scores exactly 1/2.
import { meanEstimate, type MeanEstimate } from './kl.js';

/** Per-prompt rate of policy rewards `a` beating baseline rewards `b` (ties count 1/2). */
export function winRateOnePrompt(a: readonly number[], b: readonly number[]): number {
  if (a.length === 0 || b.length === 0) throw new Error('winRate: a prompt has no samples');
  let score = 0;
  for (const x of a) for (const y of b) score += x > y ? 1 : x === y ? 0.5 : 0;
  return score / (a.length * b.length);
}

/** `policy[i]` and `baseline[i]`: the rewards of the two policies' samples for prompt i. */
export function winRate(
  policy: readonly (readonly number[])[],
  baseline: readonly (readonly number[])[],
): MeanEstimate {
  if (policy.length !== baseline.length)
    throw new Error(`winRate: ${policy.length} prompts for the policy, ${baseline.length} for the baseline`);
  return meanEstimate(policy.map((a, i) => winRateOnePrompt(a, baseline[i])));
}
