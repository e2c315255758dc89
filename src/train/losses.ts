// The DPO loss family as small pure functions of the four sequence log-prob vectors [P]
// (policy/reference x chosen/rejected). The trainer looks a loss up by name and never branches
// on it. Equation numbers refer to arXiv:2305.18290 (DPO) unless stated.
import { add, affine, detach, div, logSigmoid, narrow, relu, square, sub, sum, tensor, type Tensor } from '../core/index.js';

export interface LossInputs {
  /** Summed completion log-probs [P] under the policy (chosen, rejected) and the reference. */
  policyChosen: Tensor;
  policyRejected: Tensor;
  refChosen: Tensor;
  refRejected: Tensor;
  /** Completion lengths [P] in tokens, EOS included. */
  chosenLengths: Tensor;
  rejectedLengths: Tensor;
}

/**
 * The inputs from log-probs [2P] of rows chosen_0..chosen_{P-1}, rejected_0.. under the policy and
 * the reference, and each row's completion length (host).
 */
export function splitPairs(l: { policy: Tensor; ref: Tensor; tokens: ArrayLike<number> }, P: number): LossInputs {
  const lens = tensor(Float32Array.from(l.tokens));
  return {
    policyChosen: narrow(l.policy, 0, 0, P), policyRejected: narrow(l.policy, 0, P, P),
    refChosen: narrow(l.ref, 0, 0, P), refRejected: narrow(l.ref, 0, P, P),
    chosenLengths: narrow(lens, 0, 0, P), rejectedLengths: narrow(lens, 0, P, P),
  };
}

export interface LossOptions {
  /** beta: strength of the KL penalty (Eq. 7); 0.1 in TRL. */
  beta: number;
  /** label_smoothing: assumed probability that a preference label is flipped (cDPO / robust). */
  labelSmoothing: number;
  /** simpo_gamma: SimPO's target reward margin. */
  simpoGamma: number;
}

export interface LossOutput {
  /** Per-pair losses [P]; the objective is their mean. */
  losses: Tensor;
  /** Implicit rewards beta * log(pi / pi_ref) of chosen and rejected [P], detached. */
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
}

export type LossFn = (x: LossInputs, o: LossOptions) => LossOutput;

/** h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l), the DPO logit. */
function logRatio(x: LossInputs): Tensor {
  return sub(sub(x.policyChosen, x.refChosen), sub(x.policyRejected, x.refRejected));
}

function rewards(x: LossInputs, beta: number): Pick<LossOutput, 'chosenRewards' | 'rejectedRewards'> {
  return {
    chosenRewards: detach(affine(sub(x.policyChosen, x.refChosen), beta)),
    rejectedRewards: detach(affine(sub(x.policyRejected, x.refRejected), beta)),
  };
}

/** -(1 - e) log sigma(z) - e log sigma(-z): cDPO with label smoothing e (e = 0 is Eq. 7). */
function smoothedSigmoid(z: Tensor, e: number): Tensor {
  const main = affine(logSigmoid(z), -(1 - e));
  return e === 0 ? main : add(main, affine(logSigmoid(affine(z, -1)), -e));
}

export const LOSSES: Record<string, LossFn> = {
  /** Eq. 7, with cDPO label smoothing when label_smoothing > 0. */
  sigmoid: (x, o) => ({ losses: smoothedSigmoid(affine(logRatio(x), o.beta), o.labelSmoothing), ...rewards(x, o.beta) }),

  /** Robust DPO (Chowdhury et al. 2024): unbiased under label noise e. */
  robust: (x, o) => {
    const z = affine(logRatio(x), o.beta), e = o.labelSmoothing;
    const l = add(affine(logSigmoid(z), -(1 - e)), affine(logSigmoid(affine(z, -1)), e));
    return { losses: affine(l, 1 / (1 - 2 * e)), ...rewards(x, o.beta) };
  },

  /** SLiC-style hinge: relu(1 - beta h). */
  hinge: (x, o) => ({ losses: relu(affine(logRatio(x), -o.beta, 1)), ...rewards(x, o.beta) }),

  /** IPO (Azar et al. 2023, Eq. 17) on length-averaged log-ratios, as TRL: (h_avg - 1/(2 beta))^2. */
  ipo: (x, o) => {
    const h = sub(div(sub(x.policyChosen, x.refChosen), x.chosenLengths), div(sub(x.policyRejected, x.refRejected), x.rejectedLengths));
    return { losses: square(affine(h, 1, -1 / (2 * o.beta))), ...rewards(x, o.beta) };
  },

  /** DPO without a reference model: the reference log-probs are taken as 0. */
  reference_free: (x, o) => {
    const z = affine(sub(x.policyChosen, x.policyRejected), o.beta);
    return { losses: smoothedSigmoid(z, o.labelSmoothing), ...rewards(x, o.beta) };
  },

  /** SimPO (Meng et al. 2024): reference-free, length-normalised, margin gamma. */
  simpo: (x, o) => {
    const h = sub(div(x.policyChosen, x.chosenLengths), div(x.policyRejected, x.rejectedLengths));
    return { losses: smoothedSigmoid(affine(h, o.beta, -o.simpoGamma), o.labelSmoothing), ...rewards(x, o.beta) };
  },

  /**
   * NLL of the chosen completions per token (TRL's "sft" loss; with a weight this is RPO,
   * Pang et al. 2024). Scaled so that the mean over pairs is the batch's token mean.
   */
  sft: (x, o) => {
    // -pc_i * P / sum(L): the mean over pairs is -sum(pc) / sum(L).
    const P = x.policyChosen.size;
    return { losses: affine(div(x.policyChosen, sum(x.chosenLengths)), -P), ...rewards(x, o.beta) };
  },
};

export const LOSS_NAMES = Object.keys(LOSSES);
