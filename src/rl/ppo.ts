// PPO for RLHF as TRL 0.28's PPOTrainer (trl/experimental/ppo/ppo_trainer.py, the code 1.13 no
// longer ships): per update, sample responses of a batch of prompts, score them, compute the
// KL-penalised rewards, GAE advantages and returns (advantages.ts), then num_ppo_epochs passes of
// clipped policy + value updates over mini-batches. The policy and the value model share one
// AdamW and one learning-rate schedule, stepped once per update.
//
// Shape letters: B rollouts, Q query width (left-padded), T response width, S = Q + T, C hidden, V vocabulary.
import {
  add,
  affine,
  backward,
  detach,
  embedding,
  exp,
  linear,
  maximum,
  minimum,
  mul,
  narrow,
  noGrad,
  reshape,
  square,
  sub,
  sum,
  tensor,
  tidyAsync,
  where,
  type Tensor,
} from '../core/index.js';
import type { RewardModel } from '../eval/reward-model.js';
import type { RewardFn } from '../eval/sample.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { headLogps } from '../train/chunked-head.js';
import { positionStats } from '../train/logps.js';
import type { Optimizer } from '../train/optim.js';
import {
  computeAdvantages,
  INVALID_LOGPROB,
  paddingMasks,
  sequenceLengths,
  truncateResponses,
  type Advantages,
  type KlEstimator,
  type Masks,
} from './advantages.js';

/** The critic: a decoder body and a `score` head [1, C] read at every position. */
export interface ValueModel {
  model: CausalLM;
  head: Tensor;
  /** The folder it was loaded from. */
  source: string;
}

/** The judge of a rollout: a reward model's score at the response's last token, or a function of the texts. */
export type PpoReward = { kind: 'model'; rm: RewardModel } | { kind: 'fn'; fn: RewardFn; tok: TextTokenizer };

export interface PpoModels {
  policy: CausalLM;
  /** The reference policy; null: the policy with its LoRA adapter off. */
  ref: CausalLM | null;
  value: ValueModel;
  reward: PpoReward;
}

/** The options of one update (PpoConfig's names, camel-cased where they are not TRL's own). */
export interface PpoUpdateOptions {
  temperature: number;
  padId: number;
  eosId: number;
  /** Truncate responses after this token (stop_token eos), or null. */
  stopId: number | null;
  /** null: off. */
  missingEosPenalty: number | null;
  klCoef: number;
  klEstimator: KlEstimator;
  gamma: number;
  lam: number;
  whitenRewards: boolean;
  cliprange: number;
  cliprangeValue: number;
  vfCoef: number;
  numPpoEpochs: number;
  numMiniBatches: number;
  /** Rows per micro-batch (per_device_train_batch_size). */
  microBatch: number;
  gradientAccumulationSteps: number;
  /** Rows per no-gradient forward of the rollout phase. */
  forwardBatch: number;
  /** Rows of logits the LM head makes at once (default: 256 MiB of them; see train/chunked-head.ts). */
  headChunkRows?: number;
}

/** A batch of rollouts as TRL holds them: left-padded queries followed by the sampled responses. */
export interface RolloutBatch {
  B: number;
  /** Query width (left-padded with padId). */
  Q: number;
  /** Response width. */
  T: number;
  /** (B, Q + T) */
  queryResponses: Int32Array;
  /** Prompt texts (what a reward function sees). */
  prompts?: string[];
}

/** Everything the rollout phase computes (host, (B, T) unless noted), kept for the update and for parity checks. */
export interface RolloutData extends Advantages {
  responses: Int32Array;
  postprocessed: Int32Array;
  lens: Int32Array;
  masks: Masks;
  logprobs: Float64Array;
  refLogprobs: Float64Array;
  values: Float64Array;
  /** (B) */
  scores: Float64Array;
}

/**
 * Model inputs of (B, S) token rows as TRL's forward / get_reward build them: attention where the
 * token is not pad, positions = exclusive cumulative sum of the mask, padded ids fed as 0.
 */
export function maskedInputs(
  rows: Int32Array,
  B: number,
  S: number,
  pad: number,
): { ids: Tensor; mask: Tensor; positions: Int32Array } {
  const ids = new Int32Array(B * S),
    mask = new Float32Array(B * S),
    positions = new Int32Array(B * S);
  for (let b = 0; b < B; b++) {
    let seen = 0;
    for (let s = 0; s < S; s++) {
      const i = b * S + s,
        real = rows[i] !== pad;
      ids[i] = real ? rows[i] : 0;
      mask[i] = real ? 1 : 0;
      positions[i] = seen;
      if (real) seen++;
    }
  }
  return { ids: tensor(ids, [B, S], 'i32'), mask: tensor(mask, [B, S]), positions };
}

/** Hidden states (B * T, C) at positions Q - 1 .. Q + T - 2: those that predict the response tokens. */
function windowHidden(
  model: CausalLM,
  rows: Int32Array,
  B: number,
  Q: number,
  T: number,
  pad: number,
  adapter = true,
): Tensor {
  const x = maskedInputs(rows, B, Q + T, pad);
  const hidden = model.body(x.ids, { attentionMask: x.mask, positions: x.positions, adapter }); // (B, S, C)
  return reshape(narrow(hidden, 1, Q - 1, T), [B * T, model.hiddenSize]);
}

/**
 * Response-token log-probs (B * T) under logits / (temperature + 1e-7), and with `entropy` the
 * per-token entropies (B * T, 1) of those logits (no gradient). The LM head runs in chunks of rows
 * (train/chunked-head.ts): the (B * T, V) logits never exist at once.
 */
function responseLogprobs(
  model: CausalLM,
  rows: Int32Array,
  B: number,
  Q: number,
  T: number,
  o: PpoUpdateOptions,
  opts: { adapter?: boolean; entropy?: boolean } = {},
): { logps: Tensor; entropy: Tensor | null } {
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const id = rows[b * (Q + T) + Q + t];
      targets[b * T + t] = id === o.padId || id < 0 || id >= model.vocabSize ? -100 : id; // padded slots: masked later
    }
  const hidden = windowHidden(model, rows, B, Q, T, o.padId, opts.adapter ?? true); // (B * T, C)
  const head = headLogps(model, hidden, targets, {
    scale: 1 / (o.temperature + 1e-7),
    stats: opts.entropy ? (logits, logps) => narrow(positionStats(logits, logps), 1, 1, 1) : undefined,
    chunkRows: o.headChunkRows,
  });
  return { logps: head.logps, entropy: head.stats };
}

/** Value estimates (B * T) at the positions before each response token. */
function responseValues(v: ValueModel, rows: Int32Array, B: number, Q: number, T: number, pad: number): Tensor {
  return reshape(linear(windowHidden(v.model, rows, B, Q, T, pad), v.head), [B * T]);
}

/** The reward model's score (B) at each row's last non-pad response token (TRL's get_reward; the last query token when the response is all pad). */
function rewardScores(
  rm: RewardModel,
  rows: Int32Array,
  B: number,
  Q: number,
  T: number,
  lens: Int32Array,
  pad: number,
): Tensor {
  const S = Q + T,
    x = maskedInputs(rows, B, S, pad);
  const hidden = rm.model.body(x.ids, { attentionMask: x.mask, positions: x.positions }); // (B, S, C)
  const at = Int32Array.from(lens, (len, b) => b * S + Q + len);
  const pooled = embedding(reshape(hidden, [B * S, rm.model.hiddenSize]), tensor(at, [B], 'i32')); // (B, C)
  return reshape(narrow(linear(pooled, rm.score), 1, 0, 1), [B]);
}

const rowsOf = (x: Int32Array, width: number, from: number, to: number): Int32Array =>
  x.subarray(from * width, to * width);

/**
 * The rollout phase of one update on fixed queries + responses (TRL's "with torch.no_grad()" block):
 * log-probs of policy and reference, values, scores of the truncated responses, the missing-EOS
 * penalty, masks, rewards, advantages and returns.
 */
export async function rolloutPhase(m: PpoModels, batch: RolloutBatch, o: PpoUpdateOptions): Promise<RolloutData> {
  const { B, Q, T } = batch,
    S = Q + T;
  const responses = new Int32Array(B * T);
  for (let b = 0; b < B; b++) responses.set(batch.queryResponses.subarray(b * S + Q, (b + 1) * S), b * T);
  const postprocessed =
    o.stopId === null ? Int32Array.from(responses) : truncateResponses(responses, B, T, o.stopId, o.padId);
  const lens = sequenceLengths(postprocessed, B, T, o.padId);
  const postRows = new Int32Array(B * S);
  for (let b = 0; b < B; b++) {
    postRows.set(batch.queryResponses.subarray(b * S, b * S + Q), b * S);
    postRows.set(postprocessed.subarray(b * T, (b + 1) * T), b * S + Q);
  }
  const logprobs = new Float64Array(B * T),
    refLogprobs = new Float64Array(B * T),
    values = new Float64Array(B * T);
  const scores = new Float64Array(B);
  for (let s = 0; s < B; s += o.forwardBatch) {
    const e = Math.min(B, s + o.forwardBatch),
      n = e - s,
      rows = rowsOf(batch.queryResponses, S, s, e);
    await noGrad(() =>
      tidyAsync(async () => {
        logprobs.set(await responseLogprobs(m.policy, rows, n, Q, T, o).logps.toArray(), s * T);
        const ref = m.ref
          ? responseLogprobs(m.ref, rows, n, Q, T, o)
          : responseLogprobs(m.policy, rows, n, Q, T, o, { adapter: false });
        refLogprobs.set(await ref.logps.toArray(), s * T);
        values.set(await responseValues(m.value, rows, n, Q, T, o.padId).toArray(), s * T);
        if (m.reward.kind === 'model')
          scores.set(
            await rewardScores(m.reward.rm, rowsOf(postRows, S, s, e), n, Q, T, lens.subarray(s, e), o.padId).toArray(),
            s,
          );
      }),
    );
  }
  if (m.reward.kind === 'fn') {
    const r = m.reward;
    for (let b = 0; b < B; b++) {
      const ids = Array.from(postprocessed.subarray(b * T, b * T + lens[b] + 1));
      const completion = r.tok.decode(ids, { skipSpecialTokens: true });
      const prompt = batch.prompts?.[b] ?? '';
      const v = await r.fn(prompt, completion);
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new Error(
          `reward: got ${String(v)} for prompt ${JSON.stringify(prompt.slice(0, 60))} ` +
            `and completion ${JSON.stringify(completion.slice(0, 60))}; a reward must be a finite number`,
        );
      scores[b] = v;
    }
  }
  if (o.missingEosPenalty !== null) {
    for (let b = 0; b < B; b++)
      if (!postprocessed.subarray(b * T, (b + 1) * T).includes(o.eosId)) scores[b] -= o.missingEosPenalty;
  }
  const masks = paddingMasks(lens, T);
  for (let i = 0; i < B * T; i++) {
    if (masks.pad[i]) logprobs[i] = refLogprobs[i] = INVALID_LOGPROB;
    if (masks.padP1[i]) values[i] = 0;
  }
  const adv = computeAdvantages(
    { B, T, logprobs, refLogprobs, values, scores, lens, masks },
    { klCoef: o.klCoef, klEstimator: o.klEstimator, gamma: o.gamma, lam: o.lam, whitenRewards: o.whitenRewards },
  );
  return { ...adv, responses, postprocessed, lens, masks, logprobs, refLogprobs, values, scores };
}

/** Per-token inputs of the clipped PPO losses for a micro-batch of N = rows x T positions (host arrays are float32). */
export interface PpoLossInputs {
  /** (N) new log-probs (with gradient), already INVALID_LOGPROB where `pad`. */
  newLogprobs: Tensor;
  /** (N) new values (with gradient), already 0 where `padP1`. */
  vpred: Tensor;
  oldLogprobs: Float32Array;
  oldValues: Float32Array;
  advantages: Float32Array;
  returns: Float32Array;
  pad: Uint8Array;
  padP1: Uint8Array;
}

/**
 * The clipped surrogate policy loss and the clipped value loss (arXiv:1707.06347 Eq. 7 and 9),
 * as masked means over the valid tokens:
 *   pg = mean(max(-A r, -A clip(r, 1 - eps, 1 + eps))), r = exp(logp - logp_old)
 *   vf = 0.5 mean(max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)).
 */
export function ppoLosses(
  x: PpoLossInputs,
  o: { cliprange: number; cliprangeValue: number },
): { pgLoss: Tensor; vfLoss: Tensor } {
  const N = x.pad.length;
  const valid = Float32Array.from(x.pad, (p) => 1 - p),
    validP1 = Float32Array.from(x.padP1, (p) => 1 - p);
  const count = (v: Float32Array): number => v.reduce((a, b) => a + b, 0);
  const negAdv = tensor(
    Float32Array.from(x.advantages, (a) => -a),
    [N],
  );
  const ratio = exp(sub(x.newLogprobs, tensor(x.oldLogprobs, [N])));
  const pg1 = mul(negAdv, ratio);
  const pg2 = mul(negAdv, minimum(maximum(ratio, 1 - o.cliprange), 1 + o.cliprange));
  const pgLoss = affine(sum(mul(maximum(pg1, pg2), tensor(valid, [N]))), 1 / count(valid));
  const ret = tensor(x.returns, [N]);
  const lo = tensor(
    Float32Array.from(x.oldValues, (v) => v - o.cliprangeValue),
    [N],
  );
  const hi = tensor(
    Float32Array.from(x.oldValues, (v) => v + o.cliprangeValue),
    [N],
  );
  const vf1 = square(sub(x.vpred, ret));
  const vf2 = square(sub(minimum(maximum(x.vpred, lo), hi), ret));
  const vfLoss = affine(sum(mul(maximum(vf1, vf2), tensor(validP1, [N]))), 0.5 / count(validP1));
  return { pgLoss, vfLoss };
}

/** The per-micro-batch statistics TRL keeps (policy/*, loss/*, val/*). */
const STAT_NAMES = ['approxkl', 'pg_clipfrac', 'pg_loss', 'vf_loss', 'vf_clipfrac', 'entropy', 'ratio'] as const;
type StatName = (typeof STAT_NAMES)[number];

/** Gradient-accumulation state that outlives an update, as accelerate's accumulate(): a counter of micro-batches. */
export interface AccumulationState {
  step: number;
}

export interface UpdateOptions {
  /** Learning rate of this update's optimizer steps. */
  lr: number;
  /** This batch is the data loader's last of its epoch: accelerate then steps after every micro-batch. */
  endOfDataloader: boolean;
  /** The row order of PPO epoch e (a permutation of 0..B-1). */
  permutation(B: number, epoch: number): ArrayLike<number>;
}

export interface UpdateResult {
  /** TRL's stats arrays (num_ppo_epochs x num_mini_batches x gradient_accumulation_steps), flattened; unfilled slots stay 0 as in TRL. */
  stats: Record<StatName, Float64Array>;
  optimizerSteps: number;
}

/**
 * num_ppo_epochs passes over the rollouts: per mini-batch, micro-batches of forward + backward of
 * pg + vf_coef * vf (divided by gradient_accumulation_steps, as accelerate does), and an optimizer
 * step when accelerate would sync (every gradient_accumulation_steps micro-batches, counted across
 * mini-batches and updates, or after every micro-batch on the data loader's last batch). TRL's PPO
 * does not clip gradients.
 */
export async function ppoEpochs(
  m: PpoModels,
  optimizer: Optimizer,
  batch: RolloutBatch,
  d: RolloutData,
  o: PpoUpdateOptions,
  acc: AccumulationState,
  u: UpdateOptions,
): Promise<UpdateResult> {
  const { B, Q, T } = batch,
    S = Q + T,
    ga = o.gradientAccumulationSteps;
  if (B % o.numMiniBatches !== 0)
    throw new Error(`ppo: the batch (${B} rollouts) must be a multiple of num_mini_batches (${o.numMiniBatches})`);
  const mini = B / o.numMiniBatches;
  const slots = o.numPpoEpochs * o.numMiniBatches * ga;
  const stats = Object.fromEntries(STAT_NAMES.map((k) => [k, new Float64Array(slots)])) as Record<
    StatName,
    Float64Array
  >;
  let steps = 0;
  for (let epoch = 0; epoch < o.numPpoEpochs; epoch++) {
    const perm = u.permutation(B, epoch);
    for (let mb = 0; mb < o.numMiniBatches; mb++) {
      for (let start = 0, gaIdx = 0; start < mini; start += o.microBatch, gaIdx++) {
        const inds = Array.from(
          { length: Math.min(o.microBatch, mini - start) },
          (_, k) => perm[mb * mini + start + k],
        );
        const n = inds.length,
          N = n * T;
        const pick = <A extends Float64Array | Uint8Array>(x: A): Float32Array => {
          const out = new Float32Array(N);
          inds.forEach((r, k) => {
            for (let t = 0; t < T; t++) out[k * T + t] = x[r * T + t];
          });
          return out;
        };
        const rows = new Int32Array(n * S);
        inds.forEach((r, k) => rows.set(batch.queryResponses.subarray(r * S, (r + 1) * S), k * S));
        const pad = Uint8Array.from(pick(d.masks.pad)),
          padP1 = Uint8Array.from(pick(d.masks.padP1));
        const oldLogprobs = pick(d.logprobs),
          oldValues = pick(d.values),
          advantages = pick(d.advantages),
          returns = pick(d.returns);
        // accelerate's _do_sync: reset and sync on the loader's last batch, else sync every ga micro-batches.
        let sync: boolean;
        if (u.endOfDataloader) {
          acc.step = 0;
          sync = true;
        } else {
          acc.step++;
          sync = acc.step % ga === 0;
        }
        const r = await tidyAsync(async () => {
          const { logps, entropy } = responseLogprobs(m.policy, rows, n, Q, T, o, { entropy: true });
          const newLogprobs = where(tensor(pick(d.masks.pad), [N]), INVALID_LOGPROB, logps);
          const vpred = where(tensor(pick(d.masks.padP1), [N]), 0, responseValues(m.value, rows, n, Q, T, o.padId));
          const { pgLoss, vfLoss } = ppoLosses(
            { newLogprobs, vpred, oldLogprobs, oldValues, advantages, returns, pad, padP1 },
            o,
          );
          const loss = add(pgLoss, affine(vfLoss, o.vfCoef));
          const [lp, vp, pg, vf, ent] = await Promise.all([
            detach(newLogprobs).toArray(),
            detach(vpred).toArray(),
            detach(pgLoss).item(),
            detach(vfLoss).item(),
            entropy!.toArray(),
          ]);
          backward(ga > 1 ? affine(loss, 1 / ga) : loss, { free: true });
          return { lp, vp, pg, vf, ent };
        });
        if (sync) {
          optimizer.update(u.lr);
          optimizer.zeroGrad();
          steps++;
        }
        const slot = (epoch * o.numMiniBatches + mb) * ga + gaIdx;
        if (gaIdx < ga) writeStats(stats, slot, r, { oldLogprobs, oldValues, advantages, returns, pad, padP1 }, o);
      }
    }
  }
  return { stats, optimizerSteps: steps };
}

/** One micro-batch's entries of TRL's stats arrays, from host copies of what the losses saw. */
function writeStats(
  stats: Record<StatName, Float64Array>,
  slot: number,
  r: { lp: ArrayLike<number>; vp: ArrayLike<number>; pg: number; vf: number; ent: ArrayLike<number> },
  x: Omit<PpoLossInputs, 'newLogprobs' | 'vpred'>,
  o: { cliprange: number; cliprangeValue: number },
): void {
  const N = x.pad.length;
  let kl = 0,
    ratioSum = 0,
    pgClip = 0,
    valid = 0,
    vfClip = 0,
    validP1 = 0,
    ent = 0;
  for (let i = 0; i < N; i++) {
    const diff = r.lp[i] - x.oldLogprobs[i],
      ratio = Math.exp(diff);
    kl += diff * diff;
    ratioSum += ratio;
    ent += r.ent[i];
    if (!x.pad[i]) {
      const clipped = Math.min(Math.max(ratio, 1 - o.cliprange), 1 + o.cliprange);
      pgClip += -x.advantages[i] * clipped > -x.advantages[i] * ratio ? 1 : 0;
      valid++;
    }
    if (!x.padP1[i]) {
      const v = r.vp[i],
        vc = Math.min(Math.max(v, x.oldValues[i] - o.cliprangeValue), x.oldValues[i] + o.cliprangeValue);
      vfClip += (vc - x.returns[i]) ** 2 > (v - x.returns[i]) ** 2 ? 1 : 0;
      validP1++;
    }
  }
  stats.approxkl[slot] = (0.5 * kl) / N;
  stats.pg_clipfrac[slot] = pgClip / valid;
  stats.pg_loss[slot] = r.pg;
  stats.vf_loss[slot] = r.vf;
  stats.vf_clipfrac[slot] = vfClip / validP1;
  stats.entropy[slot] = ent / N;
  stats.ratio[slot] = ratioSum / N;
}

function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}

/** Unbiased variance (torch.var); NaN for a single value, as torch. */
function variance(x: ArrayLike<number>): number {
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - m) ** 2;
  return s / (x.length - 1);
}

/** TRL 0.28's logged metrics of one update (eps, episode and epoch are the caller's). */
export function updateMetrics(
  d: RolloutData,
  stats: Record<StatName, Float64Array>,
  B: number,
  T: number,
  eosId: number,
  lr: number,
): Record<string, number> {
  const rowSum = (x: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < B * T; i++) s += x[i];
    return s / B; // mean over rows of the per-row sums
  };
  const nonScore = rowSum(d.nonScoreReward),
    scores = mean(d.scores);
  return {
    'objective/kl': rowSum(d.kl),
    // TRL's entropy estimate: -sum of the sampled tokens' log-probs, INVALID_LOGPROB (1) counted in padded slots.
    'objective/entropy': -rowSum(d.logprobs),
    'objective/non_score_reward': nonScore,
    'objective/rlhf_reward': nonScore + scores,
    'objective/scores': scores,
    'policy/approxkl_avg': mean(stats.approxkl),
    'policy/clipfrac_avg': mean(stats.pg_clipfrac),
    'loss/policy_avg': mean(stats.pg_loss),
    'loss/value_avg': mean(stats.vf_loss),
    'val/clipfrac_avg': mean(stats.vf_clipfrac),
    'policy/entropy_avg': mean(stats.entropy),
    'val/ratio': mean(stats.ratio),
    'val/ratio_var': variance(stats.ratio),
    'val/num_eos_tokens': d.responses.reduce((a, id) => a + (id === eosId ? 1 : 0), 0),
    lr,
  };
}
