// Evaluation of a policy against a reference on prompts, the DPO paper's two measures
// (arXiv:2305.18290, Sec. 6): the mean reward of its samples with KL(pi || pi_ref) estimated on
// the same samples (the reward-vs-KL frontier, Fig. 2 left; kl.ts), and its win rate against
// samples of a baseline (Fig. 2 right; win-rate.ts).
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { estimateKl, meanEstimate, type MeanEstimate } from './kl.js';
import { sampleScored, type EvalPrompt, type RewardFn, type SampleOptions, type Scored } from './sample.js';
import { winRate } from './win-rate.js';

export interface PolicyEval {
  reward: MeanEstimate;
  /** NaN where the samples are not the policy's own distribution (temperature other than 1). */
  kl: MeanEstimate;
  /** [prompt][sample] */
  samples: Scored[][];
  /** log pi(y|x) - log pi_ref(y|x) of each sample, prompt-major (what kl averages); empty where kl is NaN. */
  klTerms: Float64Array;
}

export type EvalOptions = Omit<SampleOptions, 'k'> & { samplesPerPrompt: number };

/** Samples `samplesPerPrompt` completions per prompt from `policy`; reward, and KL against `ref`. */
export async function evaluatePolicy(
  policy: CausalLM,
  ref: CausalLM,
  tok: TextTokenizer,
  prompts: readonly EvalPrompt[],
  reward: RewardFn,
  o: EvalOptions,
): Promise<PolicyEval> {
  const samples = await sampleScored(policy, tok, prompts, reward, { ...o, k: o.samplesPerPrompt });
  const flat = samples.flatMap((g, i) =>
    g.map((s) => ({ promptIds: prompts[i].ids, completionIds: s.ids, reward: s.reward })),
  );
  const rewardEstimate = meanEstimate(flat.map((s) => s.reward));
  const kl =
    (o.temperature ?? 1) !== 1
      ? { mean: NaN, se: NaN, n: 0, terms: new Float64Array(0) }
      : // The reference against itself: the estimate is 0 sample by sample; no need to compute it.
        policy === ref
        ? { mean: 0, se: 0, n: flat.length, terms: new Float64Array(flat.length) }
        : await estimateKl(policy, ref, flat, tok.padId ?? tok.eosId ?? 0, Math.min(64, o.batchSize)).then((e) => ({
            ...e,
            terms: Float64Array.from(e.policyLogps, (p, i) => p - e.refLogps[i]),
          }));
  return { reward: rewardEstimate, kl: { mean: kl.mean, se: kl.se, n: kl.n }, samples, klTerms: kl.terms };
}

/** Win rate of the samples of `a` against those of `b`, prompt by prompt (ties 1/2). */
export function samplesWinRate(a: readonly (readonly Scored[])[], b: readonly (readonly Scored[])[]): MeanEstimate {
  return winRate(
    a.map((g) => g.map((s) => s.reward)),
    b.map((g) => g.map((s) => s.reward)),
  );
}
