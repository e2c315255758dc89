// Evaluation of a policy on held-out review prefixes, as in the DPO paper's Fig. 2 (left): the mean
// reward of its samples, and KL(pi || pi_ref) estimated on the same samples (src/eval/kl.ts).
import { estimateKl, meanEstimate, type MeanEstimate } from '../eval/kl.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { sampleScored, type DemoPrompt, type Scored } from './sample.js';

export interface PolicyEval {
  reward: MeanEstimate;
  kl: MeanEstimate;
  /** [prompt][sample] */
  samples: Scored[][];
}

export interface EvalOptions {
  samplesPerPrompt: number;
  maxNewTokens: number;
  /** The same seed at every checkpoint: every policy draws with the same random numbers. */
  seed: number;
  batchSize: number;
  /** See SampleOptions.promptWidth. */
  promptWidth?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Samples `samplesPerPrompt` completions per prompt from `policy`; reward and KL against `ref`. */
export async function evaluatePolicy(policy: CausalLM, ref: CausalLM, tok: TextTokenizer, prompts: readonly DemoPrompt[],
  o: EvalOptions): Promise<PolicyEval> {
  const samples = await sampleScored(policy, tok, prompts, {
    k: o.samplesPerPrompt, maxNewTokens: o.maxNewTokens, seed: o.seed, batchSize: o.batchSize, promptWidth: o.promptWidth, onProgress: o.onProgress,
  });
  const flat = samples.flatMap((g, i) => g.map((s) => ({ promptIds: prompts[i].ids, completionIds: s.ids, reward: s.reward })));
  const reward = meanEstimate(flat.map((s) => s.reward));
  // The starting model against itself: the estimate is 0 sample by sample; no need to compute it.
  const kl = policy === ref ? { mean: 0, se: 0, n: flat.length }
    : await estimateKl(policy, ref, flat, tok.padId ?? tok.eosId ?? 0, Math.min(64, o.batchSize));
  return { reward, kl: { mean: kl.mean, se: kl.se, n: kl.n }, samples };
}
