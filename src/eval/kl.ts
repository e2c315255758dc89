// Sequence-level KL(pi || pi_ref) by Monte Carlo: for completions y sampled from pi (plain
// sampling, temperature 1, no top-k / top-p, so that the samples follow pi itself),
//   KL(pi || pi_ref) = E_{y ~ pi} [ log pi(y | x) - log pi_ref(y | x) ]
//                   ~= (1/n) sum_i sum_t [ log pi(y_it | x_i, y_i<t) - log pi_ref(y_it | x_i, y_i<t) ],
// the estimator of the DPO paper's reward-vs-KL frontier (arXiv:2305.18290, Sec. 6.1, Fig. 2).
// It is unbiased; single terms can be negative, their mean cannot be in expectation.
import { noGrad, tidyAsync } from '../core/index.js';
import type { CausalLM } from '../models/model.js';
import { sequenceLogps, type TokenBatch } from '../train/logps.js';

/** A prompt and one completion of it, as token ids (the completion as sampled, EOS included if reached). */
export interface PromptCompletion {
  promptIds: readonly number[];
  completionIds: readonly number[];
}

/**
 * Right-padded batch of prompt + completion, completion positions marked (for sequenceLogps). The
 * length is rounded up to a multiple of 8: fewer distinct tensor sizes for the CPU allocator to keep.
 */
export function completionBatch(items: readonly PromptCompletion[], padId: number): TokenBatch {
  if (items.length === 0) throw new Error('completionBatch: no sequences');
  const T = Math.ceil(Math.max(...items.map((s) => s.promptIds.length + s.completionIds.length)) / 8) * 8;
  const R = items.length;
  const inputIds = new Int32Array(R * T).fill(padId),
    attentionMask = new Int32Array(R * T),
    completionMask = new Int32Array(R * T);
  items.forEach((s, r) => {
    if (s.promptIds.length === 0 || s.completionIds.length === 0) {
      throw new Error(
        `completionBatch: sequence ${r} has ${s.promptIds.length} prompt ` +
          `and ${s.completionIds.length} completion tokens (both must be >= 1)`,
      );
    }
    const P = s.promptIds.length,
      n = P + s.completionIds.length;
    inputIds.set(s.promptIds, r * T);
    inputIds.set(s.completionIds, r * T + P);
    attentionMask.fill(1, r * T, r * T + n);
    completionMask.fill(1, r * T + P, r * T + n);
  });
  return { rows: R, T, inputIds, attentionMask, completionMask };
}

/** log p(completion | prompt) under `model` for every item, in batches (no gradient). */
export async function completionLogps(
  model: CausalLM,
  items: readonly PromptCompletion[],
  padId: number,
  batchSize = 64,
  onProgress?: (done: number) => void,
): Promise<Float64Array> {
  const out = new Float64Array(items.length);
  for (let i = 0; i < items.length; i += batchSize) {
    const chunk = items.slice(i, i + batchSize);
    const b = completionBatch(chunk, padId);
    const seq = await noGrad(() =>
      tidyAsync(async () => sequenceLogps(model, b, { headOnCompletion: true }).seq.toArray()),
    );
    out.set(Float64Array.from(seq), i);
    onProgress?.(i + chunk.length);
  }
  return out;
}

export interface MeanEstimate {
  mean: number;
  /** Standard error of the mean (sample standard deviation / sqrt(n)). */
  se: number;
  n: number;
}

export function meanEstimate(xs: ArrayLike<number>): MeanEstimate {
  const n = xs.length;
  if (n === 0) return { mean: NaN, se: NaN, n };
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (xs[i] - mean) ** 2;
  return { mean, se: n > 1 ? Math.sqrt(v / (n - 1) / n) : NaN, n };
}

/** The Monte-Carlo KL estimate from log-probs of the same samples under pi and pi_ref. */
export function klFromLogps(policy: ArrayLike<number>, ref: ArrayLike<number>): MeanEstimate {
  if (policy.length !== ref.length)
    throw new Error(`klFromLogps: ${policy.length} policy log-probs vs ${ref.length} reference log-probs`);
  return meanEstimate(Float64Array.from(policy, (p, i) => p - ref[i]));
}

/** KL(pi || pi_ref) estimated on completions sampled from pi. */
export async function estimateKl(
  policy: CausalLM,
  ref: CausalLM,
  samples: readonly PromptCompletion[],
  padId: number,
  batchSize = 64,
): Promise<MeanEstimate & { policyLogps: Float64Array; refLogps: Float64Array }> {
  const policyLogps = await completionLogps(policy, samples, padId, batchSize);
  const refLogps = policy === ref ? policyLogps : await completionLogps(ref, samples, padId, batchSize);
  return { ...klFromLogps(policyLogps, refLogps), policyLogps, refLogps };
}
