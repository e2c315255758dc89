// Policy-gradient objectives on sampled completions, as pure functions of tensors: GRPO's clipped
// per-token surrogate with an optional k3 KL term and its four averages (loss_type), and RLOO's
// clipped sequence-level surrogate. Shapes: B completions, T completion positions.
// Each returns the micro-batch's loss before the 1 / gradient_accumulation_steps scaling.
import { add, affine, exp, maximum, minimum, mul, mulScalar, sub, sum, tensor, type Tensor } from '../core/index.js';

export interface PolicyInputs {
  /** log pi_theta(token) at temperature, (B, T), with gradient. */
  logps: Tensor;
  /** log pi at sampling time (B, T), no gradient (logps detached when num_iterations = 1). */
  oldLogps: Tensor;
  /** log pi_ref (B, T), or null without a KL term. */
  refLogps: Tensor | null;
  /** Advantage per completion. */
  advantages: Float64Array;
  /** 1 for completion tokens that count, (B, T). */
  mask: Float32Array;
  B: number;
  T: number;
}

export interface GrpoOptions {
  epsilonLow: number;
  epsilonHigh: number;
  beta: number;
  maxCompletionLength: number;
  /** Mask tokens of the whole generation batch (dapo's denominator). */
  generationTokens: number;
  /** Micro-batches the generation batch is split into (dapo's loss is per generation batch). */
  micros: number;
}

/** Clip c to [lo, hi]. */
const clamp = (c: Tensor, lo: number, hi: number): Tensor => minimum(maximum(c, lo), hi);

/**
 * Per-token GRPO loss (B, T): -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) + beta rho KL, with
 * rho = exp(logp - logp_old) and KL = exp(ref - logp) - (ref - logp) - 1 (k3; Eq. 4, arXiv:2402.03300).
 * The KL is weighted by rho (TRL 1.13's use_bias_correction_kl, on by default; DeepSeek-V3.2): rho is
 * 1 on-policy but differentiable, so it adds KL to the KL's gradient.
 */
export function grpoTokenLoss(x: PolicyInputs, o: GrpoOptions): Tensor {
  const adv = tensor(Float32Array.from(x.advantages), [x.B, 1]);
  const ratio = exp(sub(x.logps, x.oldLogps));
  const surrogate = minimum(mul(ratio, adv), mul(clamp(ratio, 1 - o.epsilonLow, 1 + o.epsilonHigh), adv));
  let loss = affine(surrogate, -1);
  if (o.beta !== 0 && x.refLogps) {
    const d = sub(x.refLogps, x.logps);
    loss = add(loss, mulScalar(mul(sub(exp(d), affine(d, 1, 1)), ratio), o.beta));
  }
  return loss;
}

/** How a loss_type averages the masked per-token losses into the micro-batch's loss. */
export type GrpoAggregate = (masked: Tensor, x: PolicyInputs, o: GrpoOptions) => Tensor;

function rowTokens(x: PolicyInputs): Float64Array {
  const n = new Float64Array(x.B);
  for (let b = 0; b < x.B; b++) for (let t = 0; t < x.T; t++) n[b] += x.mask[b * x.T + t];
  return n;
}

export const GRPO_LOSSES: Record<'grpo' | 'bnpo' | 'dr_grpo' | 'dapo', GrpoAggregate> = {
  // Each sequence's mean token loss, then the mean over sequences (the GRPO paper's 1/|o_i|).
  grpo: (masked, x) => {
    const w = Float32Array.from(rowTokens(x), (n) => 1 / (Math.max(1, n) * x.B));
    return sum(mul(sum(masked, 1), tensor(w, [x.B])));
  },
  // The mean over the micro-batch's tokens.
  bnpo: (masked, x) =>
    affine(
      sum(masked),
      1 /
        Math.max(
          1,
          x.mask.reduce((a, b) => a + b, 0),
        ),
    ),
  // Dr. GRPO (arXiv:2503.20783): a constant denominator, B x max_completion_length.
  dr_grpo: (masked, x, o) => affine(sum(masked), 1 / (x.B * o.maxCompletionLength)),
  // DAPO (arXiv:2503.14476): the mean over every token of the generation batch, so each micro-batch
  // holds its share; times micros because the loop averages micro-batch losses.
  dapo: (masked, _x, o) => affine(sum(masked), o.micros / Math.max(1, o.generationTokens)),
};

export function grpoLoss(type: keyof typeof GRPO_LOSSES, x: PolicyInputs, o: GrpoOptions): Tensor {
  const masked = mul(grpoTokenLoss(x, o), tensor(x.mask, [x.B, x.T]));
  return GRPO_LOSSES[type](masked, x, o);
}

/**
 * RLOO (TRL 1.13): the clipped surrogate on whole sequences, -min(rho A, clip(rho) A) with rho =
 * exp(sum of masked logp - sum of masked logp_old), averaged over the micro-batch's completions.
 */
export function rlooLoss(x: PolicyInputs, o: Pick<GrpoOptions, 'epsilonLow' | 'epsilonHigh'>): Tensor {
  const m = tensor(x.mask, [x.B, x.T]);
  const ratio = exp(sub(sum(mul(x.logps, m), 1), sum(mul(x.oldLogps, m), 1))); // (B)
  const adv = tensor(Float32Array.from(x.advantages), [x.B]);
  const surrogate = minimum(mul(ratio, adv), mul(clamp(ratio, 1 - o.epsilonLow, 1 + o.epsilonHigh), adv));
  return affine(sum(surrogate), -1 / x.B);
}
