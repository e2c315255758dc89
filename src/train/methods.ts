// DPO, SFT and KTO on the run skeleton (train/skeleton.ts), with no Node module: config checks and
// notices, the rows of a split tokenized, and the objective with its reference. A run from files
// (train/run.ts, train/kto-run.ts) and a run in memory (api/train.ts) build the same parts; they differ
// only in their ReferenceSource (a copy loaded from disk with a log-prob cache, or a model given in memory).
import { padIdFor } from '../data/collate.js';
import { preparePreferenceDataset, type PreferenceDataset } from '../data/pipeline.js';
import { prepareSftDataset, type SftDataset } from '../data/sft.js';
import type { CausalLM } from '../models/model.js';
import type { DpoConfig, SftConfig } from './config.js';
import { dataOptions, ktoDataOptions } from './data-options.js';
import { checkDpoConfig, computeReferenceLogps, dpoNotices, DpoObjective, ldAlphaOf, type Reference } from './dpo.js';
import {
  checkKtoConfig,
  computeKtoReference,
  KtoObjective,
  usesKl,
  weightAdvice,
  withKlCompletions,
  type KtoConfig,
  type KtoExample,
  type KtoReference,
} from './kto.js';
import { needsReference as lossesNeedReference } from './losses.js';
import type { Log, RowMethod, Setup } from './skeleton.js';
import { arrangeSftData, sftDataOptions, sftNotices, SftObjective, sftPadId, sftTokenizer } from './sft.js';
import { prepareUnpairedDataset, type UnpairedDataset } from '../data/unpaired.js';

/** Where a DPO / KTO reference comes from, and how its precomputed log-probs are kept. */
export interface ReferenceSource {
  /**
   * Whether there is a reference apart from the policy's own base: a ref_model, a saved adapter's frozen copy,
   * or a model given in memory. Without one, a run under a new LoRA adapter uses the base (the adapter off).
   */
  separate: boolean;
  /**
   * The reference model (files: a frozen copy loaded from disk, in `s.frozenDtype`; memory: the model given), or
   * null when the reference is the policy before training (in memory, none given), whose log-probs must then be
   * precomputed. Files load a new copy on every call.
   */
  load(s: Setup): CausalLM | null;
  /** Whether the model `load` returns is the run's own, to free once its log-probs are precomputed. */
  owned: boolean;
  /**
   * One precompute pass of `n` examples in batches of `batchSize` (files: through the log-prob cache, keyed by
   * `key` with `salt`, and --shard); null when a --shard part ends the run before training.
   */
  precompute(
    key: { examples: readonly { promptIds: number[]; chosenIds: number[]; rejectedIds: number[] }[]; salt: string },
    batchSize: number,
    compute: (start: number, end: number) => Promise<Float64Array[]>,
    log: Log,
  ): Promise<Float64Array[] | null>;
  /** Whether the run stops after the reference pass (--shard). */
  stopsAfterPass: boolean;
  /** Progress of a pass (files: a bar on the terminal; memory: a log line). */
  progress(label: string, n: number, unit: string, log: Log): { update(done: number): void; stop(): void };
}

const dispose = (m: CausalLM): void => {
  for (const t of m.params.values()) t.dispose();
};

/** DPO: preference rows, and the reference of the loss (none, the adapter off, a model, or precomputed log-probs). */
export function dpoMethod(cfg: DpoConfig, refs: ReferenceSource): RowMethod<PreferenceDataset> {
  return {
    command: 'dpo',
    begin: (log) => {
      checkDpoConfig(cfg);
      dpoNotices(cfg).forEach(log);
    },
    prepare: (rows, tok, split) => preparePreferenceDataset(rows, tok, dataOptions(cfg), split.files),
    objective: async (s, train, evalData, log) => {
      const padId = padIdFor(s.tok);
      const needsReference = lossesNeedReference(cfg.loss_type);
      if (cfg.shard && !(needsReference && cfg.precompute_ref_log_probs))
        throw new Error(
          `--shard ${cfg.shard}: splits the reference pass of precompute_ref_log_probs; ` +
            'set --precompute_ref_log_probs (with a loss that uses the reference)',
        );
      const adapterOff = s.newLora === true && !refs.separate;
      let reference: Reference = { kind: 'none' };
      let refModel: CausalLM | null = null;
      // A reference model is loaded only when a pass needs it (a cache may answer), and freed before training.
      let copy: CausalLM | null = null;
      const model = (): CausalLM => (adapterOff ? s.policy : (copy ??= refs.load(s) ?? s.policy));
      if (needsReference && adapterOff && !cfg.precompute_ref_log_probs) reference = { kind: 'adapter-off' };
      else if (needsReference && !cfg.precompute_ref_log_probs && (refModel = refs.load(s)))
        reference = { kind: 'model', model: refModel };
      else if (needsReference) {
        // precompute_ref_log_probs, or the policy before training (in memory, no reference given).
        const pass = async (examples: PreferenceDataset['examples'], label: string, batchSize: number) => {
          const bar = refs.progress(`reference log-probs (${label})`, examples.length, 'pairs', log);
          try {
            return await computeReferenceLogps(
              model(),
              adapterOff,
              examples,
              padId,
              cfg.precompute_ref_batch_size || batchSize,
              (d) => bar.update(d),
              ldAlphaOf(cfg),
            );
          } finally {
            bar.stop();
          }
        };
        const salt = `ld_alpha=${ldAlphaOf(cfg)} frozen_dtype=${cfg.frozen_dtype}`;
        const refPass = (ex: PreferenceDataset['examples'], label: string, bs: number) =>
          refs.precompute(
            { examples: ex, salt },
            cfg.precompute_ref_batch_size || bs,
            (a, b) => pass(ex.slice(a, b), label, bs),
            log,
          );
        const trainRef = await refPass(train.examples, 'train', cfg.per_device_train_batch_size);
        const evalRef = evalData ? await refPass(evalData.examples, 'eval', cfg.per_device_eval_batch_size) : null;
        if (refs.stopsAfterPass || !trainRef) return { objective: null };
        reference = { kind: 'cached', train: trainRef, eval: evalRef };
        if (copy && refs.owned && copy !== s.policy) dispose(copy); // the copy is no longer needed
      }
      const objective = new DpoObjective({
        cfg,
        policy: s.policy,
        params: s.params,
        reference,
        train,
        eval: evalData,
        padId,
        loraDropout: s.loraDropout,
        saveWeights: s.saveWeights,
        loadWeights: s.loadWeights,
      });
      return { objective, refModel };
    },
  };
}

/** SFT: text or conversation rows (tokenized with `chatTemplate`, chat_template_path's contents), no reference. */
export function sftMethod(cfg: SftConfig, chatTemplate: string | null = null): RowMethod<SftDataset> {
  return {
    command: 'sft',
    begin: (log) => sftNotices(cfg).forEach(log),
    prepare: (rows, tok, split) =>
      arrangeSftData(
        cfg,
        prepareSftDataset(
          rows,
          sftTokenizer(cfg, tok, chatTemplate),
          sftDataOptions(cfg, dataOptions(cfg), split.name, split.isEval),
          split.files,
        ),
        split.isEval,
      ),
    objective: async (s, train, evalData) => ({
      objective: new SftObjective({
        cfg,
        policy: s.policy,
        params: s.params,
        train,
        eval: evalData,
        padId: sftPadId(cfg, s.tok),
        loraDropout: s.loraDropout,
        saveWeights: s.saveWeights,
        loadWeights: s.loadWeights,
      }),
    }),
  };
}

/** KTO: unpaired rows, and the reference (the adapter off, a model, or precomputed log-probs). */
export function ktoMethod(cfg: KtoConfig, refs: ReferenceSource): RowMethod<UnpairedDataset> {
  return {
    command: 'kto',
    begin: () => checkKtoConfig(cfg),
    prepare: (rows, tok, split) => prepareUnpairedDataset(rows, tok, ktoDataOptions(cfg), split.files),
    notices: (train) =>
      [
        weightAdvice(train.report.desirable, train.report.undesirable, cfg.desirable_weight, cfg.undesirable_weight),
        usesKl(cfg.loss_type) && train.examples.length % cfg.per_device_train_batch_size === 1
          ? 'notice: the last micro-batch of each epoch holds one ' +
            'example, whose KL pair is its own completion (as TRL 1.13)'
          : null,
      ].filter((l): l is string => l !== null),
    objective: async (s, train, evalData, log) => {
      const padId = padIdFor(s.tok);
      if (cfg.shard && !cfg.precompute_ref_log_probs)
        throw new Error(
          `--shard ${cfg.shard}: splits the reference pass of precompute_ref_log_probs; set --precompute_ref_log_probs`,
        );
      const adapterOff = s.newLora === true && !refs.separate;
      const refModel = adapterOff ? null : refs.load(s);
      let reference: KtoReference = refModel ? { kind: 'model', model: refModel } : { kind: 'adapter-off' };
      // Without a reference model or the adapter off, the reference is the policy before training: precomputed.
      if (cfg.precompute_ref_log_probs || (!adapterOff && !refModel)) {
        const model = refModel ?? s.policy;
        const maxLength = cfg.max_length > 0 ? cfg.max_length : null;
        const pass = async (examples: KtoExample[], label: string, batchSize: number): Promise<Float64Array[]> => {
          const bar = refs.progress(`reference log-probs (${label})`, examples.length, 'examples', log);
          try {
            return await computeKtoReference(
              model,
              adapterOff,
              examples,
              padId,
              maxLength,
              cfg.precompute_ref_batch_size || batchSize,
              usesKl(cfg.loss_type),
              (d) => bar.update(d),
            );
          } finally {
            bar.stop();
          }
        };
        // The cache key: each example's prompt, completion and KL completion, and the cut.
        const key = (examples: KtoExample[]) => ({
          examples: examples.map((e) => ({
            promptIds: e.promptIds,
            chosenIds: e.completionIds,
            rejectedIds: e.klCompletionIds,
          })),
          salt: `kto max_length=${maxLength} frozen_dtype=${cfg.frozen_dtype}`,
        });
        const bs = cfg.per_device_train_batch_size;
        const refPass = (ex: KtoExample[], label: string, b: number) =>
          refs.precompute(
            key(ex),
            cfg.precompute_ref_batch_size || b,
            (start, end) => pass(ex.slice(start, end), label, b),
            log,
          );
        const trainRef = await refPass(withKlCompletions(train.examples, bs), 'train', bs);
        const evalEx = evalData ? withKlCompletions(evalData.examples, bs) : null;
        const evalRef = evalEx ? await refPass(evalEx, 'eval', cfg.per_device_eval_batch_size) : null;
        if (refs.stopsAfterPass || !trainRef) return { objective: null };
        reference = { kind: 'cached', train: trainRef, eval: evalRef };
        if (refModel && refs.owned) dispose(refModel); // the copy is no longer needed
      }
      const objective = new KtoObjective({
        cfg,
        policy: s.policy,
        params: s.params,
        reference,
        train,
        eval: evalData,
        padId,
        loraDropout: s.loraDropout,
        saveWeights: s.saveWeights,
        loadWeights: s.loadWeights,
      });
      return { objective, refModel: reference.kind === 'model' ? refModel : null };
    },
  };
}
