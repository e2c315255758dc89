// The DPO loss family as small pure functions of the four sequence log-prob vectors [P]
// (policy/reference x chosen/rejected), with the names and semantics of TRL 1.13's DPOTrainer
// (loss_type). The trainer looks a loss up by name and never branches on it. Equation numbers
// refer to arXiv:2305.18290 (DPO) unless stated.
import {
  add,
  affine,
  broadcastTo,
  detach,
  div,
  embedding,
  exp,
  logSigmoid,
  minimum,
  mul,
  narrow,
  relu,
  reshape,
  sigmoid,
  square,
  sub,
  sum,
  tensor,
  type Tensor,
} from '../core/index.js';

export interface LossInputs {
  /** Summed completion log-probs [P] under the policy (chosen, rejected) and the reference. */
  policyChosen: Tensor;
  policyRejected: Tensor;
  refChosen: Tensor;
  refRejected: Tensor;
  /** Completion lengths [P] in tokens, EOS included. */
  chosenLengths: Tensor;
  rejectedLengths: Tensor;
  /** Host copies of the four log-prob vectors, for losses that reorder pairs (aot). */
  host?: {
    policyChosen: ArrayLike<number>;
    policyRejected: ArrayLike<number>;
    refChosen: ArrayLike<number>;
    refRejected: ArrayLike<number>;
  };
}

/**
 * The inputs from log-probs [2P] of rows chosen_0..chosen_{P-1}, rejected_0.. under the policy and
 * the reference, and each row's completion length (host). With host copies of policy and ref, the
 * inputs carry them too.
 */
export function splitPairs(
  l: {
    policy: Tensor;
    ref: Tensor;
    tokens: ArrayLike<number>;
    policyHost?: ArrayLike<number>;
    refHost?: ArrayLike<number>;
  },
  P: number,
): LossInputs {
  // A completion truncated to nothing counts as length 1 where lengths divide, as TRL clamps.
  const lens = tensor(Float32Array.from(l.tokens, (n) => Math.max(1, n)));
  const x: LossInputs = {
    policyChosen: narrow(l.policy, 0, 0, P),
    policyRejected: narrow(l.policy, 0, P, P),
    refChosen: narrow(l.ref, 0, 0, P),
    refRejected: narrow(l.ref, 0, P, P),
    chosenLengths: narrow(lens, 0, 0, P),
    rejectedLengths: narrow(lens, 0, P, P),
  };
  if (l.policyHost && l.refHost) {
    const [p, r] = [l.policyHost, l.refHost];
    const part = (a: ArrayLike<number>, from: number): number[] => Array.from({ length: P }, (_, i) => a[from + i]);
    x.host = { policyChosen: part(p, 0), policyRejected: part(p, P), refChosen: part(r, 0), refRejected: part(r, P) };
  }
  return x;
}

/** f-divergence regularisers of f-DPO (arXiv:2309.16240); reverse_kl is plain DPO. */
export const F_DIVERGENCES = ['reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'] as const;
export type FDivergence = (typeof F_DIVERGENCES)[number];

export interface LossOptions {
  /** beta: strength of the KL penalty (Eq. 7); 0.1 in TRL. For ipo, the regulariser tau. */
  beta: number;
  /** label_smoothing: flip probability for robust, aot, aot_unpaired; EXO's epsilon for exo_pair. */
  labelSmoothing: number;
  /** f_divergence_type: how log-ratios become scores for the losses built on their difference. */
  fDivergence?: FDivergence;
  /** f_alpha_divergence_coef: alpha of alpha_divergence. */
  fAlpha?: number;
  /** discopop_tau: DiscoPOP's temperature. */
  discopopTau?: number;
  /** simpo_gamma: SimPO's target margin (tsdpo-only simpo loss). */
  simpoGamma?: number;
}

export interface LossOutput {
  /** Per-pair losses [P]; the objective is their mean. */
  losses: Tensor;
  /** Implicit rewards beta * log(pi / pi_ref) of chosen and rejected [P], detached. */
  chosenRewards: Tensor;
  rejectedRewards: Tensor;
}

export type LossFn = (x: LossInputs, o: LossOptions) => LossOutput;

/** log pi(y)/pi_ref(y) of chosen and rejected [P]. */
function logRatios(x: LossInputs): { chosen: Tensor; rejected: Tensor } {
  return { chosen: sub(x.policyChosen, x.refChosen), rejected: sub(x.policyRejected, x.refRejected) };
}

/** f'(pi / pi_ref) of chosen and rejected (f-DPO, Table 1 of arXiv:2309.16240): the log-ratio for reverse KL. */
function scores(x: LossInputs, o: LossOptions): { chosen: Tensor; rejected: Tensor } {
  const r = logRatios(x);
  const f = (u: Tensor): Tensor => {
    switch (o.fDivergence ?? 'reverse_kl') {
      case 'reverse_kl':
        return u;
      case 'forward_kl':
        return affine(exp(affine(u, -1)), -1, 1); // 1 - 1/t
      case 'js_divergence':
        return affine(logSigmoid(u), 1, Math.LN2); // log(2t / (t + 1))
      case 'alpha_divergence': {
        const a = o.fAlpha ?? 0.5;
        if (Math.abs(a - 1) < 1e-6) return u; // the limit is log t
        // (t^(a-1) - 1) / (a - 1), the exponent clamped at 80 as TRL does (exp stays finite in fp32)
        return affine(exp(minimum(affine(u, a - 1), 80)), 1 / (a - 1), -1 / (a - 1));
      }
    }
  };
  return { chosen: f(r.chosen), rejected: f(r.rejected) };
}

/** The DPO logit h = score(chosen) - score(rejected) (log-ratio difference for reverse KL). */
function delta(x: LossInputs, o: LossOptions): Tensor {
  const s = scores(x, o);
  return sub(s.chosen, s.rejected);
}

/** The length-normalised h: scores divided by completion lengths (at least 1). */
function deltaPerToken(x: LossInputs, o: LossOptions): Tensor {
  const s = scores(x, o);
  return sub(div(s.chosen, x.chosenLengths), div(s.rejected, x.rejectedLengths));
}

function rewards(x: LossInputs, beta: number): Pick<LossOutput, 'chosenRewards' | 'rejectedRewards'> {
  const r = logRatios(x);
  return { chosenRewards: detach(affine(r.chosen, beta)), rejectedRewards: detach(affine(r.rejected, beta)) };
}

/** -(1 - e) log sigma(z) - e log sigma(-z): the logistic loss when labels flip with probability e. */
function smoothedSigmoid(z: Tensor, e: number): Tensor {
  const main = affine(logSigmoid(z), -(1 - e));
  return e === 0 ? main : add(main, affine(logSigmoid(affine(z, -1)), -e));
}

/** x sorted ascending over the batch [P], with gradient (the order comes from host values). */
function sortedBy(x: Tensor, host: number[]): Tensor {
  const order = Int32Array.from(
    host
      .map((v, i) => [v, i] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([, i]) => i),
  );
  return reshape(embedding(reshape(x, [x.size, 1]), tensor(order, [order.length], 'i32')), [x.size]);
}

function hostOf(x: LossInputs, name: string): NonNullable<LossInputs['host']> {
  if (!x.host)
    throw new Error(
      `loss ${name}: sorts pairs by value and needs host copies ` +
        `of the log-probs (splitPairs with policyHost / refHost)`,
    );
  return x.host;
}

const diff = (a: ArrayLike<number>, b: ArrayLike<number>): number[] => Array.from(a, (v, i) => v - b[i]);

/**
 * What the trainer, the option checks and --help know about a loss: one entry per loss, and every
 * list of losses (reference-free, f-divergence, label smoothing, TRL's) derived from these entries.
 */
export interface LossEntry {
  /** The per-pair losses and the implicit rewards of a batch. */
  fn: LossFn;
  /**
   * Whether a run with this loss needs reference log-probs. Every TRL loss does, sft included: TRL
   * computes them for the rewards/* metrics whatever the loss. False: log pi_ref is taken as 0.
   */
  needsReference: boolean;
  /** One line for --help and the docs: what the loss is and where it comes from. */
  help: string;
  /** Whether TRL 1.13's DPOTrainer has it (loss_type); false for tsdpo's own. */
  trl: boolean;
  /** Built on score(chosen) - score(rejected), so f_divergence_type applies (f-DPO's log Z(x) cancels). */
  fDivergence?: boolean;
  /** Reads label_smoothing (TRL 1.13 applies it to these only). */
  labelSmoothing?: boolean;
  /** Reorders pairs by value within the batch (needs host copies; per-pair weights would not follow). */
  sortsPairs?: boolean;
  /** Why these options do not fit the loss, or null when they do. */
  check?: (o: LossOptions) => string | null;
}

const ENTRIES = {
  /** Eq. 7: -log sigma(beta h). (TRL 1.13 applies no label smoothing here.) */
  sigmoid: {
    fn: (x, o) => ({ losses: affine(logSigmoid(affine(delta(x, o), o.beta)), -1), ...rewards(x, o.beta) }),
    needsReference: true,
    trl: true,
    fDivergence: true,
    help: 'DPO (Eq. 7, arXiv:2305.18290): -log sigma(beta h), h the chosen minus rejected log-ratio',
  },

  /** SLiC-style hinge: relu(1 - beta h). */
  hinge: {
    fn: (x, o) => ({ losses: relu(affine(delta(x, o), -o.beta, 1)), ...rewards(x, o.beta) }),
    needsReference: true,
    trl: true,
    fDivergence: true,
    help: 'SLiC hinge (arXiv:2305.10425): relu(1 - beta h)',
  },

  /** IPO (Azar et al. 2023, Eq. 17) on length-averaged log-ratios, as TRL: (h_avg - 1/(2 beta))^2. */
  ipo: {
    fn: (x, o) => ({ losses: square(affine(deltaPerToken(x, o), 1, -1 / (2 * o.beta))), ...rewards(x, o.beta) }),
    needsReference: true,
    trl: true,
    fDivergence: true,
    help: 'IPO (Eq. 17, arXiv:2310.12036) on length-averaged log-ratios: (h_avg - 1/(2 beta))^2',
  },

  /**
   * EXO-pref (arXiv:2402.00856, Eq. 16): KL(q || p) with q = softmax over {chosen, rejected} of
   * beta * score and p = (1 - e, e); needs label_smoothing e > 0.
   */
  exo_pair: {
    fn: (x, o) => {
      const z = affine(delta(x, o), o.beta),
        e = o.labelSmoothing;
      const lw = logSigmoid(z),
        ll = logSigmoid(affine(z, -1));
      return {
        losses: add(mul(exp(lw), affine(lw, 1, -Math.log1p(-e))), mul(exp(ll), affine(ll, 1, -Math.log(e)))),
        ...rewards(x, o.beta),
      };
    },
    needsReference: true,
    trl: true,
    fDivergence: true,
    labelSmoothing: true,
    check: (o) => (o.labelSmoothing > 0 ? null : 'needs label_smoothing > 0 (the EXO paper suggests 1e-3)'),
    help: 'EXO (Eq. 16, arXiv:2402.00856): reverse KL to the label distribution (1 - e, e), e = label_smoothing > 0',
  },

  /** NCA (arXiv:2402.05369): -log sigma(r_w) - 0.5 log sigma(-r_w) - 0.5 log sigma(-r_l), r = beta log-ratio. */
  nca_pair: {
    fn: (x, o) => {
      const r = logRatios(x),
        cw = affine(r.chosen, o.beta),
        cl = affine(r.rejected, o.beta);
      const l = add(
        add(affine(logSigmoid(cw), -1), affine(logSigmoid(affine(cw, -1)), -0.5)),
        affine(logSigmoid(affine(cl, -1)), -0.5),
      );
      return { losses: l, ...rewards(x, o.beta) };
    },
    needsReference: true,
    trl: true,
    help: 'NCA (arXiv:2402.05369): -log sigma(r_w) - 0.5 log sigma(-r_w) - 0.5 log sigma(-r_l), r = beta log-ratio',
  },

  /** Robust DPO (Chowdhury et al. 2024): unbiased under label noise e. */
  robust: {
    fn: (x, o) => {
      const z = affine(delta(x, o), o.beta),
        e = o.labelSmoothing;
      const l = add(affine(logSigmoid(z), -(1 - e)), affine(logSigmoid(affine(z, -1)), e));
      return { losses: affine(l, 1 / (1 - 2 * e)), ...rewards(x, o.beta) };
    },
    needsReference: true,
    trl: true,
    fDivergence: true,
    labelSmoothing: true,
    check: (o) =>
      o.labelSmoothing >= 0 && o.labelSmoothing < 0.5
        ? null
        : `needs label_smoothing in [0, 0.5) (as TRL 1.13), got ${o.labelSmoothing}`,
    help: 'robust DPO (arXiv:2403.00409): unbiased when labels flip with probability label_smoothing',
  },

  /** BCO on pairs (arXiv:2404.04656): -log sigma(r_w) - log sigma(-r_l). */
  bco_pair: {
    fn: (x, o) => {
      const r = logRatios(x);
      const l = add(
        affine(logSigmoid(affine(r.chosen, o.beta)), -1),
        affine(logSigmoid(affine(r.rejected, -o.beta)), -1),
      );
      return { losses: l, ...rewards(x, o.beta) };
    },
    needsReference: true,
    trl: true,
    help: 'BCO on pairs (arXiv:2404.04656): -log sigma(r_w) - log sigma(-r_l), r = beta log-ratio',
  },

  /** SPPO with hard labels (arXiv:2405.00675, Eq. 4.7 with P = 1 / 0): squared distances to +-1/(2 beta). */
  sppo_hard: {
    fn: (x, o) => {
      const r = logRatios(x);
      return {
        losses: add(square(affine(r.chosen, 1, -0.5 / o.beta)), square(affine(r.rejected, 1, 0.5 / o.beta))),
        ...rewards(x, o.beta),
      };
    },
    needsReference: true,
    trl: true,
    help: 'SPPO, hard labels (Eq. 4.7, arXiv:2405.00675): log-ratios pulled to +1/(2 beta) and -1/(2 beta)',
  },

  /** AOT (arXiv:2406.05882), paired: the batch's sorted policy log-odds against the sorted reference ones. */
  aot: {
    fn: (x, o) => {
      const h = hostOf(x, 'aot');
      const pol = sortedBy(sub(x.policyChosen, x.policyRejected), diff(h.policyChosen, h.policyRejected));
      const ref = sortedBy(sub(x.refChosen, x.refRejected), diff(h.refChosen, h.refRejected));
      return { losses: smoothedSigmoid(affine(sub(pol, ref), o.beta), o.labelSmoothing), ...rewards(x, o.beta) };
    },
    needsReference: true,
    trl: true,
    labelSmoothing: true,
    sortsPairs: true,
    help: "AOT, paired (arXiv:2406.05882): the batch's sorted policy log-odds against the sorted reference ones",
  },

  /** AOT, unpaired: sorted chosen log-ratios against sorted rejected log-ratios. */
  aot_unpaired: {
    fn: (x, o) => {
      const h = hostOf(x, 'aot_unpaired'),
        r = logRatios(x);
      const c = sortedBy(r.chosen, diff(h.policyChosen, h.refChosen)),
        l = sortedBy(r.rejected, diff(h.policyRejected, h.refRejected));
      return { losses: smoothedSigmoid(affine(sub(c, l), o.beta), o.labelSmoothing), ...rewards(x, o.beta) };
    },
    needsReference: true,
    trl: true,
    labelSmoothing: true,
    sortsPairs: true,
    help: "AOT, unpaired (arXiv:2406.05882): the batch's sorted chosen log-ratios against the sorted rejected ones",
  },

  /** APO-zero (arXiv:2408.06266, Eq. 7): raise chosen, lower rejected likelihood. */
  apo_zero: {
    fn: (x, o) => {
      const r = logRatios(x);
      return {
        losses: add(affine(sigmoid(affine(r.chosen, o.beta)), -1, 1), sigmoid(affine(r.rejected, o.beta))),
        ...rewards(x, o.beta),
      };
    },
    needsReference: true,
    trl: true,
    help: 'APO-zero (Eq. 7, arXiv:2408.06266): raises the chosen and lowers the rejected likelihood',
  },

  /** APO-down (arXiv:2408.06266, Eq. 8): lower both, rejected more. */
  apo_down: {
    fn: (x, o) => {
      const r = logRatios(x);
      return {
        losses: add(
          sigmoid(affine(r.chosen, o.beta)),
          affine(sigmoid(affine(sub(r.chosen, r.rejected), o.beta)), -1, 1),
        ),
        ...rewards(x, o.beta),
      };
    },
    needsReference: true,
    trl: true,
    help: 'APO-down (Eq. 8, arXiv:2408.06266): lowers both likelihoods, the rejected one more',
  },

  /** DiscoPOP (arXiv:2406.08414, Eq. 5): logistic and exponential losses blended by sigma(beta h / tau). */
  discopop: {
    fn: (x, o) => {
      const z = affine(delta(x, o), o.beta);
      const m = sigmoid(affine(z, 1 / (o.discopopTau ?? 0.05)));
      return {
        losses: add(mul(affine(logSigmoid(z), -1), affine(m, -1, 1)), mul(exp(affine(z, -1)), m)),
        ...rewards(x, o.beta),
      };
    },
    needsReference: true,
    trl: true,
    fDivergence: true,
    help: 'DiscoPOP (Eq. 5, arXiv:2406.08414): logistic and exponential losses blended by sigma(beta h / discopop_tau)',
  },

  /**
   * NLL of the chosen completions per token (TRL's "sft" loss; with a weight beside sigmoid this is
   * RPO, Pang et al. 2024). Scaled so that the mean over pairs is the batch's token mean.
   */
  sft: {
    fn: (x, o) => {
      // Every pair carries the batch's token mean -sum(pc) / sum(L) (TRL expands the scalar the same way).
      const nll = affine(div(sum(x.policyChosen), sum(x.chosenLengths)), -1);
      return { losses: broadcastTo(reshape(nll, [1]), [x.policyChosen.size]), ...rewards(x, o.beta) };
    },
    needsReference: true,
    trl: true,
    fDivergence: true,
    help: 'NLL of the chosen completions per token; beside sigmoid with a weight, RPO (arXiv:2404.19733)',
  },

  /** Sigmoid on length-averaged scores: -log sigma(beta h_avg). */
  sigmoid_norm: {
    fn: (x, o) => ({ losses: affine(logSigmoid(affine(deltaPerToken(x, o), o.beta)), -1), ...rewards(x, o.beta) }),
    needsReference: true,
    trl: true,
    fDivergence: true,
    help: 'sigmoid on length-averaged log-ratios: -log sigma(beta h_avg)',
  },

  /** tsdpo-only (not a TRL 1.13 DPO loss): DPO without a reference, log pi_ref taken as 0. */
  reference_free: {
    fn: (x, o) => ({
      losses: affine(logSigmoid(affine(sub(x.policyChosen, x.policyRejected), o.beta)), -1),
      ...rewards(x, o.beta),
    }),
    needsReference: false,
    trl: false,
    help: 'tsdpo-only: sigmoid DPO without a reference model (log pi_ref taken as 0)',
  },

  /**
   * tsdpo-only (TRL has it in CPOTrainer): SimPO (Meng et al. 2024), reference-free, length-normalised, margin gamma.
   */
  simpo: {
    fn: (x, o) => {
      const h = sub(div(x.policyChosen, x.chosenLengths), div(x.policyRejected, x.rejectedLengths));
      return { losses: affine(logSigmoid(affine(h, o.beta, -(o.simpoGamma ?? 0.5))), -1), ...rewards(x, o.beta) };
    },
    needsReference: false,
    trl: false,
    help:
      'tsdpo-only (TRL has it in CPOTrainer): SimPO (arXiv:2405.14734), ' +
      'length-normalised, no reference, margin simpo_gamma',
  },
} satisfies Record<string, LossEntry>;

export type LossName = keyof typeof ENTRIES;

/** The DPO losses by loss_type name (TRL 1.13's names, plus tsdpo's reference_free and simpo). */
export const LOSSES: Readonly<Record<LossName, LossEntry>> = ENTRIES;

/** Every loss name, in the registry's order. */
export const LOSS_NAMES = Object.keys(LOSSES) as LossName[];

/** Losses TRL 1.13's DPOTrainer has (the others are tsdpo's own). */
export const TRL_LOSSES = LOSS_NAMES.filter((n) => LOSSES[n].trl);

export function isLossName(name: string): name is LossName {
  return Object.hasOwn(LOSSES, name);
}

/** The registry entry of a loss; throws naming the known ones. */
export function lossEntry(name: string): LossEntry {
  if (!isLossName(name)) throw new Error(`loss_type: unknown loss '${name}'; one of ${LOSS_NAMES.join(', ')}`);
  return LOSSES[name];
}

/** Whether a run with these losses needs reference log-probs (see LossEntry.needsReference). */
export function needsReference(names: readonly string[]): boolean {
  return names.some((n) => lossEntry(n).needsReference);
}

/** The losses, one `name: help` line each, TRL's first. */
export function lossHelp(): string[] {
  const own = LOSS_NAMES.filter((n) => !LOSSES[n].trl);
  return [...TRL_LOSSES, ...own].map((n) => `${n}: ${LOSSES[n].help}`);
}
