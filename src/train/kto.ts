// KTO (Kahneman-Tversky Optimization, arXiv:2402.01306) with the names, defaults and metrics of TRL
// 1.13's KTOConfig / KTOTrainer: its options, its losses as pure functions in a name -> fn table, and
// the objective the shared training loop runs. Each example is one (prompt, completion, label) row;
// the reference point z_0 is estimated per micro-batch from mismatched (prompt, other completion)
// pairs (src/data/unpaired.ts klCompletions).
import {
  affine,
  backward,
  detach,
  mean,
  mul,
  noGrad,
  sigmoid,
  sub,
  tensor,
  tidyAsync,
  type Tensor,
} from '../core/index.js';
import { collateSft } from '../data/collate.js';
import { klCompletions, type UnpairedDataset, type UnpairedExample } from '../data/unpaired.js';
import type { LoraDropout } from '../nn/linear.js';
import type { CausalLM } from '../models/model.js';
import { COMMON_OPTIONS, type CommonConfig, type ConfigOf, type OptionSpec } from './config.js';
import { mixIntoReference, type HostStats } from './dpo.js';
import { sequenceLogps, STAT_COLUMNS, type TokenBatch } from './logps.js';
import type { NamedParam } from './optim.js';
import { batchesOf, type MicroResult, type Objective } from './loop.js';

/** Options only `tsdpo kto` has (TRL 1.13 KTOConfig names and defaults). */
export const KTO_OPTIONS = {
  beta: {
    type: 'number',
    default: 0.1,
    help: 'KL strength: higher stays closer to the reference (Eq. 7, arXiv:2402.01306)',
  },
  loss_type: {
    type: 'string',
    default: 'kto',
    choices: ['kto', 'apo_zero_unpaired'],
    help: 'kto (Eq. 7 of arXiv:2402.01306) or apo_zero_unpaired (unpaired APO-zero, arXiv:2408.06266; no KL estimate)',
  },
  desirable_weight: {
    type: 'number',
    default: 1,
    help: 'weight of the losses of desirable (label true) examples, to counter an unequal number of each',
  },
  undesirable_weight: {
    type: 'number',
    default: 1,
    help: 'weight of the losses of undesirable (label false) examples',
  },
  train_sampling_strategy: {
    type: 'string',
    default: 'sequential',
    choices: ['sequential', 'random'],
    help:
      "training order: sequential (TRL 1.13's KTO default; loss_type " +
      'kto requires it, its KL pairs are built in data order) or random',
  },
  ref_model: {
    type: 'string',
    default: '',
    help:
      'reference model folder (default: a frozen copy of --model; with a new LoRA ' +
      'adapter the base model, with --adapter a frozen copy of that adapter, as TRL 1.13)',
  },
  sync_ref_model: {
    type: 'bool',
    default: false,
    help:
      'TR-DPO (arXiv:2404.09656): every ref_model_sync_steps mix the policy ' +
      'into the reference model (not with LoRA or precompute_ref_log_probs)',
  },
  ref_model_mixup_alpha: {
    type: 'number',
    default: 0.6,
    help: 'TR-DPO: reference = alpha * policy + (1 - alpha) * reference at each sync',
  },
  ref_model_sync_steps: { type: 'int', default: 512, help: 'TR-DPO: steps between syncs' },
  precompute_ref_log_probs: {
    type: 'bool',
    default: false,
    help: 'compute reference log-probs (completions and KL pairs) in one pass before training and cache them on disk',
  },
  precompute_ref_batch_size: {
    type: 'int',
    default: 0,
    help:
      'batch size of that pass (0 = per_device_train_batch_size ' +
      'for training data, per_device_eval_batch_size for eval data)',
  },
  shard: {
    type: 'string',
    default: '',
    help:
      'i/n: compute part i of n of that pass (whole batches), write it beside the cache and stop ' +
      'before training; a run without --shard merges the n parts (a job array: README, Scaling out)',
  },
  disable_dropout: {
    type: 'bool',
    default: true,
    help: 'no dropout in the policy and the reference (TRL default); false keeps lora_dropout while training',
  },
  completion_column: { type: 'string', default: 'completion', help: 'column holding the completion of unpaired rows' },
  label_column: {
    type: 'string',
    default: 'label',
    help: 'column holding the boolean label of unpaired rows (true = desirable)',
  },
} as const satisfies Record<string, OptionSpec>;

/** `tsdpo kto`'s configuration: TRL 1.13's KTOConfig names. */
export type KtoConfig = CommonConfig & ConfigOf<typeof KTO_OPTIONS>;
/** Every option of `tsdpo kto` (COMMON_OPTIONS and KTO_OPTIONS). */
export const KTO_SPECS = { ...COMMON_OPTIONS, ...KTO_OPTIONS };

/** Losses that estimate the KL reference point (all but apo_zero_unpaired, as TRL 1.13). */
export const usesKl = (lossType: string): boolean => lossType !== 'apo_zero_unpaired';

/** Option values and combinations TRL 1.13 refuses (or tsdpo kto does not have), refused naming the option. */
export function checkKtoConfig(cfg: KtoConfig): void {
  if (!(cfg.loss_type in KTO_LOSSES))
    throw new Error(`--loss_type: unknown KTO loss '${cfg.loss_type}'; one of ${Object.keys(KTO_LOSSES).join(', ')}`);
  if (usesKl(cfg.loss_type) && cfg.per_device_train_batch_size <= 1) {
    throw new Error(
      `--per_device_train_batch_size is ${cfg.per_device_train_batch_size}: ` +
        `loss_type ${cfg.loss_type} estimates the KL term from ` +
        `each micro-batch's prompts paired with the other examples' ` +
        `completions, so it needs at least 2 (as TRL 1.13; ` +
        `gradient_accumulation_steps does not help); or use loss_type apo_zero_unpaired`,
    );
  }
  if (usesKl(cfg.loss_type) && cfg.train_sampling_strategy !== 'sequential') {
    throw new Error(
      `--train_sampling_strategy ${cfg.train_sampling_strategy}: ` +
        `loss_type ${cfg.loss_type} needs sequential (as TRL 1.13): ` +
        `the KL completion of each example is fixed against its neighbours in data order`,
    );
  }
  if (cfg.sync_ref_model && (cfg.use_peft || cfg.adapter))
    throw new Error(
      '--sync_ref_model: not supported with a LoRA adapter (as ' +
        'TRL 1.13); train all weights or set sync_ref_model false',
    );
  if (cfg.sync_ref_model && cfg.frozen_dtype === 'bfloat16')
    throw new Error(
      '--sync_ref_model: the reference is updated from the policy, so ' +
        'it cannot be a bfloat16 frozen copy; set frozen_dtype float32',
    );
  if (cfg.sync_ref_model && cfg.precompute_ref_log_probs)
    throw new Error('--sync_ref_model: precompute_ref_log_probs assumes a fixed reference; set one of them false');
  if (cfg.truncation_mode !== 'keep_start')
    throw new Error(
      `--truncation_mode ${cfg.truncation_mode}: KTO keeps the start of ` +
        `prompt + completion only (TRL 1.13 KTOConfig has no truncation_mode)`,
    );
  for (const k of ['max_prompt_length', 'max_completion_length'] as const) {
    if (cfg[k] > 0)
      throw new Error(
        `--${k} ${cfg[k]}: not an option of tsdpo kto (TRL 1.13 KTO cuts prompt + completion to max_length)`,
      );
  }
}

/**
 * TRL 1.13's advice when the labels are unbalanced (Eq. 8 of arXiv:2402.01306, kto_trainer.py):
 * desirable_weight * n_desirable / (undesirable_weight * n_undesirable) should lie in [1, 4/3].
 * A line naming the ranges of either weight that reach it, or null when one of the weights does.
 */
export function weightAdvice(
  desirable: number,
  undesirable: number,
  desirableWeight: number,
  undesirableWeight: number,
): string | null {
  const nd = Math.max(desirable, 1),
    nu = Math.max(undesirable, 1);
  if (nd === nu) return null;
  const r2 = (v: number): number => Math.round(v * 100) / 100;
  const d = [r2((nu * undesirableWeight) / nd), r2(((nu * undesirableWeight) / nd) * 1.33)];
  const u = [r2((nd * desirableWeight) / nu / 1.33), r2((nd * desirableWeight) / nu)];
  const inside = (v: number, [lo, hi]: number[]): boolean => lo <= v && v <= hi;
  if (inside(desirableWeight, d) || inside(undesirableWeight, u)) return null;
  return (
    `notice: ${desirable} desirable and ${undesirable} undesirable examples: ` +
    `TRL 1.13 recommends EITHER desirable_weight in [${d.join(', ')}] ` +
    `or undesirable_weight in [${u.join(', ')}] (not both)`
  );
}

export interface KtoInputs {
  /** Summed completion log-probs [N] under the policy (with gradient) and the reference. */
  policy: Tensor;
  ref: Tensor;
  /** +1 for desirable rows, -1 for undesirable ones [N]. */
  sign: Tensor;
  /** The KL estimate z_0 (detached, clamped at 0); 0 for losses without one. */
  kl: number;
}

export type KtoLossFn = (x: KtoInputs, o: { beta: number }) => Tensor;

/** Per-example losses [N]; the objective is their weighted mean. */
export const KTO_LOSSES: Record<string, KtoLossFn> = {
  /**
   * Eq. 7 of arXiv:2402.01306: 1 - sigma(beta (r - z_0)) if desirable, 1 - sigma(beta (z_0 - r)) if not; r = log
   * pi/pi_ref.
   */
  kto: (x, o) => affine(sigmoid(mul(affine(sub(x.policy, x.ref), o.beta, -o.beta * x.kl), x.sign)), -1, 1),
  /**
   * Unpaired APO-zero (Eq. 7 of arXiv:2408.06266): 1 - sigma(beta r) if desirable, sigma(beta r) = 1 - sigma(-beta r)
   * if not.
   */
  apo_zero_unpaired: (x, o) => affine(sigmoid(mul(affine(sub(x.policy, x.ref), o.beta), x.sign)), -1, 1),
};

/** The KL estimate of a micro-batch: mean of log pi(y'|x) - log pi_ref(y'|x) over its mismatched pairs, at least 0. */
export function klEstimate(policyKl: ArrayLike<number>, refKl: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < policyKl.length; i++) s += policyKl[i] - refKl[i];
  return Math.max(0, s / Math.max(1, policyKl.length));
}

/**
 * TRL 1.13's KTO metrics of one micro-batch, from host copies: kl, entropy (token mean over the
 * completions), logits/chosen and logits/rejected (token means of the mean logit, only when such
 * tokens exist), rewards/* and logps/* (means over the desirable / undesirable examples, only when
 * there are some), rewards/margins (only with both).
 */
export function ktoMetrics(
  labels: readonly boolean[],
  beta: number,
  pol: ArrayLike<number>,
  ref: ArrayLike<number>,
  kl: number,
  stats: HostStats,
): Record<string, number> {
  const m: Record<string, number> = { kl };
  let sc = 0,
    tc = 0,
    sr = 0,
    tr = 0,
    ent = 0;
  stats.rows.forEach((row, j) => {
    if (row < 0) return;
    ent += stats.values[STAT_COLUMNS * j + 1];
    if (labels[row]) {
      sc += stats.values[STAT_COLUMNS * j];
      tc++;
    } else {
      sr += stats.values[STAT_COLUMNS * j];
      tr++;
    }
  });
  m.entropy = tc + tr > 0 ? ent / (tc + tr) : 0;
  if (tc > 0) m['logits/chosen'] = sc / tc;
  if (tr > 0) m['logits/rejected'] = sr / tr;
  const sums = { chosen: [0, 0, 0], rejected: [0, 0, 0] }; // [count, reward sum, logp sum]
  labels.forEach((l, i) => {
    const s = sums[l ? 'chosen' : 'rejected'];
    s[0]++;
    s[1] += beta * (pol[i] - ref[i]);
    s[2] += pol[i];
  });
  for (const k of ['chosen', 'rejected'] as const) {
    const [n, r, lp] = sums[k];
    if (n > 0) {
      m[`rewards/${k}`] = r / n;
      m[`logps/${k}`] = lp / n;
    }
  }
  if (sums.chosen[0] > 0 && sums.rejected[0] > 0) m['rewards/margins'] = m['rewards/chosen'] - m['rewards/rejected'];
  return m;
}

/** Where reference log-probs come from (as DPO's Reference; cached rows are [completion, KL pair]). */
export type KtoReference =
  | { kind: 'model'; model: CausalLM }
  | { kind: 'adapter-off' }
  | { kind: 'cached'; train: Float64Array[]; eval: Float64Array[] | null };

/** A KTO example with its KL pair's completion (the neighbour's, see klCompletions). */
export interface KtoExample extends UnpairedExample {
  klCompletionIds: number[];
}

/** The examples of a dataset with their KL completions, rotated in blocks of the train batch size. */
export function withKlCompletions(examples: readonly UnpairedExample[], trainBatchSize: number): KtoExample[] {
  const kl = klCompletions(examples, trainBatchSize);
  return examples.map((e, i) => ({ ...e, klCompletionIds: kl[i] }));
}

/** Right-padded batch of prompt + completion rows cut to maxLength (keep the start), as TRL's collator. */
export function ktoBatch(
  examples: readonly KtoExample[],
  which: 'completion' | 'kl',
  padId: number,
  maxLength: number | null,
): TokenBatch & { tokens: number } {
  const b = collateSft(
    examples.map((e) => {
      const ids = [...e.promptIds, ...(which === 'completion' ? e.completionIds : e.klCompletionIds)];
      return { ids: maxLength === null ? ids : ids.slice(0, maxLength), promptLength: e.promptIds.length };
    }),
    { padId },
  );
  let tokens = 0;
  for (const n of b.seqLengths) tokens += n;
  return {
    rows: b.B,
    T: b.T,
    inputIds: b.inputIds,
    attentionMask: b.attentionMask,
    completionMask: b.lossMask,
    tokens,
  };
}

export interface KtoParts {
  cfg: KtoConfig;
  policy: CausalLM;
  params: NamedParam[];
  reference: KtoReference;
  train: UnpairedDataset;
  eval: UnpairedDataset | null;
  padId: number;
  loraDropout: number;
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
}

/**
 * Summed completion log-probs [rows] of a batch under a model, without gradient, as a host copy (activations freed at
 * once).
 */
function hostLogps(model: CausalLM, b: TokenBatch, adapter: boolean): Promise<Float32Array> {
  return noGrad(() =>
    tidyAsync(
      async () => (await sequenceLogps(model, b, { adapter, headOnCompletion: true }).seq.toArray()) as Float32Array,
    ),
  );
}

/** Reference log-probs [completion, KL pair] of every example, in batches (precompute_ref_log_probs). */
export async function computeKtoReference(
  ref: CausalLM,
  adapterOff: boolean,
  examples: readonly KtoExample[],
  padId: number,
  maxLength: number | null,
  batchSize: number,
  withKl: boolean,
  onProgress?: (done: number) => void,
): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  const logps = (b: TokenBatch): Promise<Float32Array> => hostLogps(ref, b, !adapterOff);
  for (const chunk of batchesOf(examples.length, batchSize)) {
    const ex = chunk.map((i) => examples[i]);
    const main = await logps(ktoBatch(ex, 'completion', padId, maxLength));
    const kl = withKl ? await logps(ktoBatch(ex, 'kl', padId, maxLength)) : new Float32Array(ex.length);
    ex.forEach((_, k) => out.push(Float64Array.of(main[k], kl[k])));
    onProgress?.(out.length);
  }
  return out;
}

export class KtoObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout: number;
  readonly sequential: boolean;
  private readonly train: KtoExample[];
  private readonly evalSet: KtoExample[] | null;

  constructor(readonly parts: KtoParts) {
    const bs = parts.cfg.per_device_train_batch_size;
    this.train = withKlCompletions(parts.train.examples, bs);
    this.evalSet = parts.eval ? withKlCompletions(parts.eval.examples, bs) : null;
    this.size = this.train.length;
    this.params = parts.params;
    this.loraDropout = parts.loraDropout;
    this.sequential = parts.cfg.train_sampling_strategy === 'sequential';
  }

  /** The examples with KL completions (for precomputing reference log-probs). */
  examples(split: 'train' | 'eval'): KtoExample[] {
    return (split === 'train' ? this.train : this.evalSet) ?? [];
  }

  private get maxLength(): number | null {
    return this.parts.cfg.max_length > 0 ? this.parts.cfg.max_length : null;
  }

  /** Reference log-probs of the completions and of the KL pairs [n] (host), without gradient. */
  private async refLogps(
    bm: TokenBatch,
    bk: TokenBatch | null,
    indices: number[],
    split: 'train' | 'eval',
  ): Promise<[ArrayLike<number>, ArrayLike<number> | null]> {
    const r = this.parts.reference;
    if (r.kind === 'cached') {
      const table = split === 'train' ? r.train : r.eval;
      if (!table) throw new Error('precomputed reference log-probs are missing for the eval set');
      return [indices.map((i) => table[i][0]), bk ? indices.map((i) => table[i][1]) : null];
    }
    // The reference model, or the policy with its adapter switched off.
    const [model, adapter] = r.kind === 'model' ? [r.model, true] : [this.parts.policy, false];
    const kl = bk ? await hostLogps(model, bk, adapter) : null;
    return [await hostLogps(model, bm, adapter), kl];
  }

  private async forward(
    indices: number[],
    split: 'train' | 'eval',
    scale: number | null,
    dropout: LoraDropout | null = null,
  ): Promise<MicroResult> {
    const { cfg, policy, padId } = this.parts;
    const examples = indices.map((i) => this.examples(split)[i]);
    const withKl = usesKl(cfg.loss_type);
    const bm = ktoBatch(examples, 'completion', padId, this.maxLength);
    const bk = withKl ? ktoBatch(examples, 'kl', padId, this.maxLength) : null;
    const [refMain, refKl] = await this.refLogps(bm, bk, indices, split);
    // The policy's KL pairs without gradient: z_0 is a constant of the loss (TRL detaches it).
    const polKl = bk ? await hostLogps(policy, bk, true) : null;
    const kl = polKl && refKl ? klEstimate(polKl, refKl) : 0;
    const labels = examples.map((e) => e.label);
    return tidyAsync(async () => {
      const pol = sequenceLogps(policy, bm, { stats: true, headOnCompletion: true, dropout });
      const x: KtoInputs = {
        policy: pol.seq,
        ref: tensor(Float32Array.from(refMain)),
        sign: tensor(Float32Array.from(labels, (l) => (l ? 1 : -1))),
        kl,
      };
      const losses = KTO_LOSSES[cfg.loss_type](x, { beta: cfg.beta });
      const weights = tensor(Float32Array.from(labels, (l) => (l ? cfg.desirable_weight : cfg.undesirable_weight)));
      const loss = mean(mul(losses, weights));
      const lossOut = detach(loss); // read after backward frees the graph
      const [values, polHost] = await Promise.all([pol.stats!.values.toArray(), pol.seq.toArray()]);
      if (scale !== null) backward(scale === 1 ? loss : affine(loss, scale), { free: true });
      const metrics = ktoMetrics(labels, cfg.beta, polHost, refMain, kl, { values, rows: pol.stats!.rows });
      return { loss: await lossOut.item(), metrics, tokens: bm.tokens };
    });
  }

  micro(indices: number[], scale: number, _step?: number, dropout?: LoraDropout | null): Promise<MicroResult> {
    return this.forward(indices, 'train', scale, dropout);
  }

  /** sync_ref_model (TR-DPO), as TRL 1.13's KTOTrainer: after the step, before its logging and evaluation. */
  async afterStep(step: number): Promise<void> {
    const { cfg, reference, policy } = this.parts;
    if (cfg.sync_ref_model && reference.kind === 'model' && step % cfg.ref_model_sync_steps === 0)
      await mixIntoReference(reference.model, policy, cfg.ref_model_mixup_alpha);
  }

  async evaluate(): Promise<Record<string, number> | null> {
    const ev = this.evalSet;
    if (!ev || ev.length === 0) return null;
    // As transformers' evaluation loop and TRL: the loss is a mean over examples, each other metric a
    // mean over the batches that logged it.
    const sums: Record<string, number> = {},
      counts: Record<string, number> = {};
    let loss = 0;
    for (const idx of batchesOf(ev.length, this.parts.cfg.per_device_eval_batch_size)) {
      const r = await noGrad(() => this.forward(idx, 'eval', null));
      loss += r.loss * idx.length;
      for (const [k, v] of Object.entries(r.metrics)) {
        sums[k] = (sums[k] ?? 0) + v;
        counts[k] = (counts[k] ?? 0) + 1;
      }
    }
    const out: Record<string, number> = { loss: loss / ev.length };
    for (const [k, v] of Object.entries(sums)) out[k] = v / counts[k];
    return out;
  }

  saveWeights(dir: string): Promise<void> {
    return this.parts.saveWeights(dir);
  }

  loadWeights(dir: string): Promise<void> {
    return this.parts.loadWeights(dir);
  }
}
