// DPO training (arXiv:2305.18290): the objective the training loop runs, its reference model
// (a frozen copy, the base model under a LoRA adapter, or log-probs precomputed and cached),
// and TRL's metrics.
import {
  add as addT,
  backward,
  detach,
  mean,
  mul as mulT,
  mulScalar as mulScalarT,
  noGrad,
  tensor,
  tidy,
  tidyAsync,
  type Tensor,
} from '../core/index.js';
import { collatePreference } from '../data/collate.js';
import type { PreferenceDataset } from '../data/pipeline.js';
import type { TokenizedPair } from '../data/tokenize.js';
import type { LoraDropout } from '../nn/linear.js';
import type { CausalLM } from '../models/model.js';
import type { DpoConfig } from './config.js';
import { LOSS_NAMES, LOSSES, lossEntry, splitPairs, type LossInputs, type LossOptions } from './losses.js';
import {
  pairLogpsSharedPrompt,
  sequenceLogps,
  STAT_COLUMNS,
  targetIsArgmax,
  type LogpOptions,
  type LogpResult,
  type TokenBatch,
} from './logps.js';
import type { NamedParam } from './optim.js';
import { evaluateInBatches, type MicroResult, type Objective } from './loop.js';

/** Where reference log-probs come from. */
export type Reference =
  | { kind: 'model'; model: CausalLM }
  /** The policy itself with its LoRA adapter switched off. */
  | { kind: 'adapter-off' }
  /** Precomputed per example (chosen, rejected), for the train and eval sets. */
  | { kind: 'cached'; train: Float64Array[]; eval: Float64Array[] | null }
  /** Reference-free losses only: log pi_ref taken as 0. */
  | { kind: 'none' };

export interface DpoParts {
  cfg: DpoConfig;
  policy: CausalLM;
  params: NamedParam[];
  reference: Reference;
  train: PreferenceDataset;
  eval: PreferenceDataset | null;
  padId: number;
  /** LoRA dropout probability while training (0 without an adapter). */
  loraDropout: number;
  /** Weights out / in (model folder or adapter), supplied by the caller. */
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
}

/** ld_alpha as an option of the log-prob functions (null = off). */
export const ldAlphaOf = (cfg: Pick<DpoConfig, 'ld_alpha'>): number | null => (cfg.ld_alpha >= 0 ? cfg.ld_alpha : null);

/**
 * One line per option whose TRL 1.13 meaning differs or that 1.13 dropped, naming the 1.13 way.
 * tsdpo accepts them all.
 */
/** Option combinations TRL 1.13 refuses, refused the same way. */
export function checkDpoConfig(cfg: DpoConfig): void {
  const entries = cfg.loss_type.map((name) => ({ name, ...lossEntry(name) }));
  if (cfg.loss_weights.length > 0 && cfg.loss_weights.length !== cfg.loss_type.length) {
    throw new Error(`--loss_weights has ${cfg.loss_weights.length} values for ${cfg.loss_type.length} loss types`);
  }
  for (const e of entries) {
    const why = e.check?.(lossOptions(cfg));
    if (why) throw new Error(`loss_type ${e.name} ${why}`);
  }
  if (cfg.sync_ref_model && (cfg.use_peft || cfg.adapter))
    throw new Error(
      'sync_ref_model: not supported with a LoRA adapter (as TRL 1.13); train all weights or set sync_ref_model false',
    );
  if (cfg.sync_ref_model && cfg.frozen_dtype === 'bfloat16')
    throw new Error(
      'sync_ref_model: the reference is updated from the policy, so ' +
        'it cannot be a bfloat16 frozen copy; set frozen_dtype float32',
    );
  if (cfg.sync_ref_model && cfg.precompute_ref_log_probs)
    throw new Error('sync_ref_model: precompute_ref_log_probs assumes a fixed reference; set one of them false');
  if (cfg.ld_alpha !== -1 && (cfg.ld_alpha < 0 || cfg.ld_alpha > 1))
    throw new Error(`ld_alpha is ${cfg.ld_alpha}; it must lie in [0, 1] (or -1 for off)`);
  // f-DPO's log Z(x) term cancels only in the chosen - rejected difference (TRL's list).
  const noF = entries.filter((e) => !e.fDivergence).map((e) => e.name);
  if (cfg.f_divergence_type !== 'reverse_kl' && noF.length > 0) {
    const fLosses = LOSS_NAMES.filter((n) => LOSSES[n].fDivergence);
    throw new Error(
      `f_divergence_type ${cfg.f_divergence_type}: loss_type ${noF.join(', ')} has no ` +
        `f-divergence form; use it with ${fLosses.join(', ')}, or f_divergence_type reverse_kl`,
    );
  }
  const sorting = entries.filter((e) => e.sortsPairs).map((e) => e.name);
  if (cfg.use_weighting && sorting.length > 0)
    throw new Error(`use_weighting: not with ${sorting.join(' / ')}, which sort the pairs (as TRL 1.13)`);
}

export function dpoNotices(cfg: DpoConfig): string[] {
  const out: string[] = [];
  if (cfg.rpo_alpha > 0) {
    const weights = cfg.loss_weights.length ? cfg.loss_weights : cfg.loss_type.map(() => '1');
    out.push(
      `notice: rpo_alpha is not in TRL 1.13; tsdpo runs its equivalent, loss_type ` +
        `${[...cfg.loss_type, 'sft'].join(',')} with loss_weights ${[...weights, String(cfg.rpo_alpha)].join(',')}`,
    );
  }
  for (const l of cfg.loss_type.filter((n) => !lossEntry(n).trl))
    out.push(`notice: loss_type ${l} is tsdpo's own, not a TRL 1.13 DPOTrainer loss (${lossEntry(l).help})`);
  if (cfg.padding_free)
    out.push("notice: padding_free is off in TRL 1.13's DPOTrainer (it falls back to padding); tsdpo pads too");
  if (cfg.max_prompt_length > 0)
    out.push(
      `notice: max_prompt_length is tsdpo's own (TRL 1.13 dropped it and ` +
        `truncates prompt + completion to max_length with truncation_mode)`,
    );
  if (cfg.max_completion_length > 0)
    out.push(`notice: max_completion_length is tsdpo's own (TRL 1.13 truncates prompt + completion to max_length)`);
  if (cfg.truncation_mode === 'keep_end' && cfg.max_length > 0)
    out.push(
      `notice: truncation_mode keep_end (deprecated in TRL 1.13) keeps the end of the prompt in tsdpo; ` +
        `TRL 1.13 cuts the start of prompt + completion, which can differ between chosen and rejected`,
    );
  const smoothed = LOSS_NAMES.filter((n) => LOSSES[n].labelSmoothing);
  if (cfg.label_smoothing > 0 && cfg.loss_type.every((l) => !lossEntry(l).labelSmoothing))
    out.push(
      `notice: label_smoothing ${cfg.label_smoothing} has no effect on loss_type ${cfg.loss_type.join(',')} ` +
        `(TRL 1.13 applies it to ${smoothed.join(', ')} only; cDPO was sigmoid + label_smoothing before 1.13)`,
    );
  return out;
}

export function batchOf(
  pairs: readonly TokenizedPair[],
  padId: number,
  padToMultipleOf = 1,
): TokenBatch & { P: number; tokens: number } {
  const b = collatePreference(pairs, { padId, padToMultipleOf });
  let tokens = 0;
  for (const n of b.seqLengths) tokens += n;
  return {
    rows: b.B,
    T: b.T,
    P: b.P,
    inputIds: b.inputIds,
    attentionMask: b.attentionMask,
    completionMask: b.completionMask,
    tokens,
  };
}

/** The loss options of a config. */
export function lossOptions(cfg: DpoConfig): LossOptions {
  return {
    beta: cfg.beta,
    labelSmoothing: cfg.label_smoothing,
    simpoGamma: cfg.simpo_gamma,
    discopopTau: cfg.discopop_tau,
    fDivergence: cfg.f_divergence_type,
    fAlpha: cfg.f_alpha_divergence_coef,
  };
}

/** (loss_type, weight) terms of a config; rpo_alpha > 0 adds TRL 1.13's equivalent, an sft term of that weight. */
export function lossTerms(cfg: DpoConfig): [string, number][] {
  const weights = cfg.loss_weights.map(Number);
  const terms: [string, number][] = cfg.loss_type.map((name, i) => [name, weights[i] ?? 1]);
  if (cfg.rpo_alpha > 0) terms.push(['sft', cfg.rpo_alpha]);
  return terms;
}

/**
 * The weighted sum of the configured losses, as one scalar tensor: sum_k w_k mean_i(loss_k,i * u_i),
 * where u are the optional per-pair WPO weights [P] (use_weighting); and the implicit rewards [P]
 * of chosen and rejected (every loss returns the same ones, beta * log(pi / pi_ref)).
 */
export function dpoLoss(
  x: LossInputs,
  cfg: DpoConfig,
  pairWeights: Float32Array | null = null,
): { loss: Tensor; chosenRewards: Tensor; rejectedRewards: Tensor } {
  const o = lossOptions(cfg);
  let loss: Tensor | null = null,
    rewards: { chosenRewards: Tensor; rejectedRewards: Tensor } | null = null;
  const u = pairWeights ? tensor(pairWeights) : null;
  for (const [name, w] of lossTerms(cfg)) {
    const out = lossEntry(name).fn(x, o);
    rewards ??= out;
    const m = mean(u ? mulT(out.losses, u) : out.losses);
    const term = w === 1 ? m : mulScalarT(m, w);
    loss = loss === null ? term : addT(loss, term);
  }
  return { loss: loss!, chosenRewards: rewards!.chosenRewards, rejectedRewards: rewards!.rejectedRewards };
}

/**
 * The mean sigmoid DPO loss (Eq. 7) of a collated batch of pairs (rows chosen_0.., rejected_0..):
 * policy log-probs with gradient, reference log-probs without. For benchmarks and tests.
 */
export function batchSigmoidLoss(
  policy: CausalLM,
  reference: CausalLM,
  b: TokenBatch,
  o: { beta?: number; headOnCompletion?: boolean } = {},
): Tensor {
  const pol = sequenceLogps(policy, b, { headOnCompletion: o.headOnCompletion });
  // The reference pass's activations are freed at once: only its log-probs are kept.
  const ref = noGrad(() => tidy(() => sequenceLogps(reference, b, { headOnCompletion: o.headOnCompletion }).seq));
  const x = splitPairs({ policy: pol.seq, ref, tokens: pol.tokens }, b.rows / 2);
  return mean(LOSSES.sigmoid.fn(x, { beta: o.beta ?? 0.1, labelSmoothing: 0 }).losses);
}

/**
 * TRL's metric names for one micro-batch of P pairs, from host copies of the implicit rewards [P]
 * the loss returned (chosen, rejected), the policy's per-sequence log-probs [2P] and its
 * per-position statistics (see positionStats).
 */
export function metricsOf(
  P: number,
  rewards: HostRewards,
  pol: ArrayLike<number>,
  stats: HostStats | null,
): Record<string, number> {
  let rc = 0,
    rr = 0,
    acc = 0,
    lc = 0,
    lr = 0;
  for (let i = 0; i < P; i++) {
    const c = rewards.chosen[i],
      r = rewards.rejected[i];
    rc += c;
    rr += r;
    acc += c > r ? 1 : 0;
    lc += pol[i];
    lr += pol[P + i];
  }
  const m: Record<string, number> = {
    'rewards/chosen': rc / P,
    'rewards/rejected': rr / P,
    'rewards/accuracies': acc / P,
    'rewards/margins': (rc - rr) / P,
    'logps/chosen': lc / P,
    'logps/rejected': lr / P,
  };
  if (stats) {
    // Token means over the batch's completion positions (chosen / rejected / both), as TRL.
    let sc = 0,
      tc = 0,
      sr = 0,
      tr = 0,
      ent = 0,
      hit = 0;
    const v = stats.values,
      C = STAT_COLUMNS;
    stats.rows.forEach((row, j) => {
      if (row < 0) return;
      ent += v[C * j + 1];
      if (row < P) {
        sc += v[C * j];
        tc++;
        hit += targetIsArgmax(v[C * j + 2]) ? 1 : 0;
      } else {
        sr += v[C * j];
        tr++;
      }
    });
    m['logits/chosen'] = tc > 0 ? sc / tc : 0;
    m['logits/rejected'] = tr > 0 ? sr / tr : 0;
    m.entropy = tc + tr > 0 ? ent / (tc + tr) : 0;
    m.mean_token_accuracy = tc > 0 ? hit / tc : 0;
  }
  return m;
}

/** Host copies of a loss's chosenRewards and rejectedRewards [P]. */
export interface HostRewards {
  chosen: ArrayLike<number>;
  rejected: ArrayLike<number>;
}

/** Host copy of PositionStats. */
export interface HostStats {
  values: ArrayLike<number>;
  rows: Int32Array;
}

/**
 * WPO weights (Eq. 2, arXiv:2406.11827) [P]: per pair, w(chosen) * w(rejected) with
 * w(y) = exp(mean over y's tokens of log p(token) - log sum_v p_v^2), from the policy (no gradient;
 * plain token log-probs, also under ld_alpha, as TRL).
 */
export function wpoWeights(P: number, tokens: ArrayLike<number>, stats: HostStats): Float32Array {
  const sum = new Float64Array(2 * P),
    C = STAT_COLUMNS;
  stats.rows.forEach((row, j) => {
    if (row >= 0) sum[row] += stats.values[C * j + 4] - stats.values[C * j + 3];
  });
  const w = (r: number): number => Math.exp(sum[r] / Math.max(1, tokens[r]));
  return Float32Array.from({ length: P }, (_, i) => w(i) * w(P + i));
}

export class DpoObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout: number;

  constructor(readonly parts: DpoParts) {
    this.size = parts.train.examples.length;
    this.params = parts.params;
    this.loraDropout = parts.loraDropout;
  }

  /** Log-probs [2P] of the batch under a model: shared prompts, or the collated sequences. */
  private logps(model: CausalLM, b: TokenBatch, pairs: readonly TokenizedPair[], o: LogpOptions): LogpResult {
    const { cfg, padId } = this.parts;
    const opts = { ...o, ldAlpha: ldAlphaOf(cfg) };
    return cfg.share_prompt
      ? pairLogpsSharedPrompt(model, pairs, padId, opts)
      : sequenceLogps(model, b, { ...opts, headOnCompletion: cfg.completion_only_head });
  }

  /** Reference log-probs [2P] of a collated batch (no gradient). */
  private refLogps(b: TokenBatch, pairs: readonly TokenizedPair[], indices: number[], split: 'train' | 'eval'): Tensor {
    const r = this.parts.reference;
    const P = indices.length;
    switch (r.kind) {
      // tidy: the reference pass's activations are freed at once, only its log-probs are kept.
      case 'model':
        return noGrad(() => tidy(() => this.logps(r.model, b, pairs, {}).seq));
      case 'adapter-off':
        return noGrad(() => tidy(() => this.logps(this.parts.policy, b, pairs, { adapter: false }).seq));
      case 'none':
        return tensor(new Float32Array(2 * P));
      case 'cached': {
        const table = split === 'train' ? r.train : r.eval;
        if (!table) throw new Error('precomputed reference log-probs are missing for the eval set');
        const v = new Float32Array(2 * P);
        indices.forEach((i, k) => {
          v[k] = table[i][0];
          v[P + k] = table[i][1];
        });
        return tensor(v);
      }
    }
  }

  private async forward(
    indices: number[],
    split: 'train' | 'eval',
    scale: number | null,
    dropout: LoraDropout | null = null,
  ): Promise<MicroResult> {
    const { cfg, policy, padId } = this.parts;
    const data = split === 'train' ? this.parts.train : this.parts.eval!;
    const pairs = indices.map((i) => data.examples[i]);
    const b = batchOf(pairs, padId, cfg.pad_to_multiple_of > 0 ? cfg.pad_to_multiple_of : 1);
    return tidyAsync(async () => {
      // The reference first: its transient activations and logits are gone before the policy's exist.
      const ref = this.refLogps(b, pairs, indices, split);
      const pol = this.logps(policy, b, pairs, { stats: true, dropout });
      const [values, polHost, refHost] = await Promise.all([
        pol.stats!.values.toArray(),
        pol.seq.toArray(),
        ref.toArray(),
      ]);
      const stats = { values, rows: pol.stats!.rows };
      const weights = cfg.use_weighting ? wpoWeights(b.P, pol.tokens, stats) : null;
      const { loss, chosenRewards, rejectedRewards } = dpoLoss(
        splitPairs({ policy: pol.seq, ref, tokens: pol.tokens, policyHost: polHost, refHost }, b.P),
        cfg,
        weights,
      );
      const lossOut = detach(loss); // read after backward frees the graph
      // The rewards are detached; their reads are issued before backward and awaited after it.
      const rewards = Promise.all([chosenRewards.toArray(), rejectedRewards.toArray()]);
      if (scale !== null) backward(scale === 1 ? loss : mulScalarT(loss, scale), { free: true });
      const [chosen, rejected] = await rewards;
      return {
        loss: await lossOut.item(),
        metrics: metricsOf(b.P, { chosen, rejected }, polHost, stats),
        tokens: b.tokens,
      };
    });
  }

  /** TR-DPO (arXiv:2404.09656, TRL's sync_ref_model): every ref_model_sync_steps, ref <- a * policy + (1 - a) * ref. */
  async afterStep(step: number): Promise<void> {
    const { cfg, reference, policy } = this.parts;
    if (!cfg.sync_ref_model || reference.kind !== 'model' || step % cfg.ref_model_sync_steps !== 0) return;
    await mixIntoReference(reference.model, policy, cfg.ref_model_mixup_alpha);
  }

  micro(indices: number[], scale: number, _step?: number, dropout?: LoraDropout | null): Promise<MicroResult> {
    return this.forward(indices, 'train', scale, dropout);
  }

  async evaluate(): Promise<Record<string, number> | null> {
    const ev = this.parts.eval;
    if (!ev || ev.examples.length === 0) return null;
    return evaluateInBatches(ev.examples.length, this.parts.cfg.per_device_eval_batch_size, (idx) =>
      noGrad(() => this.forward(idx, 'eval', null)),
    );
  }

  saveWeights(dir: string): Promise<void> {
    return this.parts.saveWeights(dir);
  }

  loadWeights(dir: string): Promise<void> {
    return this.parts.loadWeights(dir);
  }
}

/**
 * TR-DPO's reference update (arXiv:2404.09656, TRL's SyncRefModelCallback): ref <- alpha * policy + (1 - alpha) * ref.
 */
export async function mixIntoReference(reference: CausalLM, policy: CausalLM, alpha: number): Promise<void> {
  for (const [name, r] of reference.params) {
    const p = policy.params.get(name);
    if (!p)
      throw new Error(
        `sync_ref_model: the policy has no parameter ${name} (the reference model must have the policy's architecture)`,
      );
    const [rv, pv] = await Promise.all([r.toArray(), p.toArray()]);
    r.backend.write(
      r.storage,
      Float32Array.from(rv, (v, i) => (1 - alpha) * v + alpha * pv[i]),
    );
  }
}

/** Reference log-probs (chosen, rejected) of every example, in batches, with progress. */
export async function computeReferenceLogps(
  ref: CausalLM,
  adapterOff: boolean,
  examples: readonly TokenizedPair[],
  padId: number,
  batchSize: number,
  onProgress?: (done: number) => void,
  ldAlpha: number | null = null,
): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const chunk = examples.slice(i, i + batchSize);
    const b = batchOf(chunk, padId);
    const seq = await noGrad(() =>
      tidyAsync(async () =>
        sequenceLogps(ref, b, { adapter: !adapterOff, headOnCompletion: true, ldAlpha }).seq.toArray(),
      ),
    );
    chunk.forEach((_, k) => out.push(Float64Array.of(seq[k], seq[b.P + k])));
    onProgress?.(out.length);
  }
  return out;
}
