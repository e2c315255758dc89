// The PPO rollout's host-side arithmetic, as TRL 0.28's PPOTrainer (trl/experimental/ppo/ppo_trainer.py):
// response truncation at the stop token, the padding masks, the per-token KL penalty with the
// score added after EOS, masked whitening, and GAE. All arrays are (B, T) row-major over the
// response window (T = response width), float64.
//
// Shape letters: B rollouts, T response tokens.

/** Log-prob written into padded slots (TRL's INVALID_LOGPROB): old and new both hold it, so their ratio is 1 there. */
export const INVALID_LOGPROB = 1.0;

/** Per row, the index of the first element where `pred` holds, or T when none does (TRL's first_true_indices). */
export function firstTrueIndices(x: ArrayLike<number>, B: number, T: number, pred: (v: number) => boolean): Int32Array {
  const out = new Int32Array(B).fill(T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      if (pred(x[b * T + t])) {
        out[b] = t;
        break;
      }
  return out;
}

/** Responses with every token after the first `stop` replaced by `pad` (TRL's truncate_response). */
export function truncateResponses(responses: Int32Array, B: number, T: number, stop: number, pad: number): Int32Array {
  const out = Int32Array.from(responses);
  const first = firstTrueIndices(responses, B, T, (v) => v === stop);
  for (let b = 0; b < B; b++) for (let t = first[b] + 1; t < T; t++) out[b * T + t] = pad;
  return out;
}

/**
 * The last counted response index per row: the slot before the first pad of the truncated response
 * (-1 when it starts with pad, T - 1 when it has none). Logprobs count up to it (padding_mask is
 * t > len); values and rewards one further (padding_mask_p1 is t > len + 1).
 */
export function sequenceLengths(post: Int32Array, B: number, T: number, pad: number): Int32Array {
  return firstTrueIndices(post, B, T, (v) => v === pad).map((i) => i - 1);
}

export interface Masks {
  /** 1 where t > len (logprobs and advantages invalid). */
  pad: Uint8Array;
  /** 1 where t > len + 1 (values and rewards invalid). */
  padP1: Uint8Array;
}

export function paddingMasks(lens: Int32Array, T: number): Masks {
  const B = lens.length,
    pad = new Uint8Array(B * T),
    padP1 = new Uint8Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      pad[b * T + t] = t > lens[b] ? 1 : 0;
      padP1[b * T + t] = t > lens[b] + 1 ? 1 : 0;
    }
  return { pad, padP1 };
}

/** sum(x * valid) / sum(valid), valid = 1 - invalid (TRL's masked_mean). */
export function maskedMean(x: ArrayLike<number>, invalid: Uint8Array): number {
  let s = 0,
    n = 0;
  for (let i = 0; i < invalid.length; i++)
    if (!invalid[i]) {
      s += x[i];
      n++;
    }
  return s / n;
}

/** Masked variance with Bessel's correction (TRL's masked_var, unbiased=True). */
export function maskedVar(x: ArrayLike<number>, invalid: Uint8Array): number {
  const m = maskedMean(x, invalid);
  let s = 0,
    n = 0;
  for (let i = 0; i < invalid.length; i++)
    if (!invalid[i]) {
      s += (x[i] - m) ** 2;
      n++;
    }
  if (n === 0)
    throw new Error('maskedVar: every position is masked (try a larger batch: whitening needs several tokens)');
  return (s / n) * (n / (n - 1));
}

/** (x - mean) / sqrt(var + 1e-8) over the valid positions; shiftMean false adds the mean back (TRL's masked_whiten). */
export function maskedWhiten(x: ArrayLike<number>, invalid: Uint8Array, shiftMean = true): Float64Array {
  const m = maskedMean(x, invalid),
    v = maskedVar(x, invalid);
  const r = 1 / Math.sqrt(v + 1e-8);
  return Float64Array.from(x, (xi) => (xi - m) * r + (shiftMean ? 0 : m));
}

export type KlEstimator = 'k1' | 'k3';

/** Per-token KL estimates from log r = ref - policy (http://joschu.net/blog/kl-approx.html): k1 = -log r, k3 = (r - 1) - log r. */
export const KL_ESTIMATORS: Record<KlEstimator, (logr: number) => number> = {
  k1: (logr) => -logr,
  k3: (logr) => Math.expm1(logr) - logr,
};

export interface AdvantageInputs {
  B: number;
  T: number;
  /** Rollout policy and reference log-probs (B, T), already INVALID_LOGPROB past each row's length. */
  logprobs: Float64Array;
  refLogprobs: Float64Array;
  /** Value estimates (B, T), already 0 where padP1. */
  values: Float64Array;
  /** One score per row (reward model or reward function, after missing_eos_penalty). */
  scores: Float64Array;
  lens: Int32Array;
  masks: Masks;
}

export interface AdvantageOptions {
  klCoef: number;
  klEstimator: KlEstimator;
  gamma: number;
  lam: number;
  whitenRewards: boolean;
}

export interface Advantages {
  kl: Float64Array;
  nonScoreReward: Float64Array;
  rewards: Float64Array;
  advantages: Float64Array;
  returns: Float64Array;
}

/**
 * Rewards (KL penalty per token, the score added at the first slot after EOS, or at the last slot
 * when the response fills the window), then GAE advantages and returns; advantages whitened over
 * the valid tokens (TRL 0.28 ppo_trainer.py, "4. compute rewards" to "6. compute advantages").
 */
export function computeAdvantages(x: AdvantageInputs, o: AdvantageOptions): Advantages {
  const { B, T, masks } = x;
  const kl = new Float64Array(B * T),
    nonScoreReward = new Float64Array(B * T);
  const est = KL_ESTIMATORS[o.klEstimator];
  for (let i = 0; i < B * T; i++) {
    kl[i] = est(x.refLogprobs[i] - x.logprobs[i]);
    nonScoreReward[i] = -o.klCoef * kl[i];
  }
  let rewards: Float64Array = Float64Array.from(nonScoreReward);
  for (let b = 0; b < B; b++) {
    const end = x.lens[b] + 1 < T ? x.lens[b] + 1 : x.lens[b];
    rewards[b * T + end] += x.scores[b];
  }
  if (o.whitenRewards) {
    rewards = maskedWhiten(rewards, masks.padP1, false);
    for (let i = 0; i < B * T; i++) if (masks.padP1[i]) rewards[i] = 0;
  }
  // GAE (arXiv:1506.02438, Eq. 16): A_t = delta_t + gamma lam A_{t+1}, delta_t = r_t + gamma V_{t+1} - V_t.
  const adv = new Float64Array(B * T);
  for (let b = 0; b < B; b++) {
    let last = 0;
    for (let t = T - 1; t >= 0; t--) {
      const next = t < T - 1 ? x.values[b * T + t + 1] : 0;
      const delta = rewards[b * T + t] + o.gamma * next - x.values[b * T + t];
      last = delta + o.gamma * o.lam * last;
      adv[b * T + t] = last;
    }
  }
  const returns = Float64Array.from(adv, (a, i) => a + x.values[i]);
  const advantages = maskedWhiten(adv, masks.pad);
  for (let i = 0; i < B * T; i++) if (masks.pad[i]) advantages[i] = 0;
  return { kl, nonScoreReward, rewards, advantages, returns };
}

/**
 * The legacy adaptive KL coefficient (Ziegler et al. 2019, arXiv:1909.08593 Sec. 2.2; TRL <= 0.11's
 * AdaptiveKLController, used by the DPO paper's PPO baseline): after each update,
 * kl_coef *= 1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon, n the rollouts of the update.
 */
export class AdaptiveKl {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {}

  update(currentKl: number, nSteps: number): void {
    const err = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.value *= 1 + (err * nSteps) / this.horizon;
  }
}
