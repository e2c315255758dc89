// `tsdpo kto` end to end: the model (+ LoRA) and data as for dpo (src/train/run.ts), the KTO
// reference (a frozen copy, the base model under a new adapter, a frozen copy of a saved adapter, or
// log-probs precomputed and cached), the shared training loop, and the final weights.
import { padIdFor } from '../data/collate.js';
import { loadUnpairedDataset, type UnpairedDataOptions } from '../data/unpaired.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import type { CausalLM } from '../models/model.js';
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
import { progress } from './progress.js';
import { parseShard } from '../eval/shard.js';
import { shardedReference } from './ref-shard.js';
import { refCacheFile, runMethod, type RunOptions, type RunSummary } from './run.js';

/** The data options of a KTO config. */
export function dataOptions(cfg: KtoConfig): UnpairedDataOptions {
  return {
    // A named prompt column must exist; the default one may be absent (paired rows with an implicit prompt).
    columns: {
      prompt: cfg.prompt_column === 'prompt' ? undefined : cfg.prompt_column,
      completion: cfg.completion_column,
      label: cfg.label_column,
      chosen: cfg.chosen_column,
      rejected: cfg.rejected_column,
    },
    skipInvalid: cfg.skip_invalid,
    maxLength: cfg.max_length > 0 ? cfg.max_length : null,
  };
}

export async function runKto(cfg: KtoConfig, opts: RunOptions = {}): Promise<RunSummary> {
  checkKtoConfig(cfg);
  return runMethod(cfg, opts, {
    command: 'kto',
    load: (path, split, s) => loadUnpairedDataset(path, s.tok, { ...dataOptions(cfg), split }),
    notices: (train) =>
      [
        weightAdvice(train.report.desirable, train.report.undesirable, cfg.desirable_weight, cfg.undesirable_weight),
        usesKl(cfg.loss_type) && train.examples.length % cfg.per_device_train_batch_size === 1
          ? 'notice: the last micro-batch of each epoch holds one example, whose KL pair is its own completion (as TRL 1.13)'
          : null,
      ].filter((l): l is string => l !== null),
    objective: async (s, train, evalData, log) => {
      const padId = padIdFor(s.tok);
      let reference: KtoReference;
      let refModel: CausalLM | null = null;
      if (s.lora && !cfg.ref_model && !cfg.adapter) reference = { kind: 'adapter-off' };
      else {
        refModel = loadModel(cfg.ref_model || cfg.model_name_or_path, { frozenDtype: s.frozenDtype });
        // Training a saved adapter: the reference is a frozen copy of it (TRL 1.13's "ref" adapter).
        if (!cfg.ref_model && cfg.adapter) loadAdapter(refModel, cfg.adapter);
        reference = { kind: 'model', model: refModel };
      }
      if (cfg.shard && !cfg.precompute_ref_log_probs)
        throw new Error(
          `--shard ${cfg.shard}: splits the reference pass of precompute_ref_log_probs; set --precompute_ref_log_probs`,
        );
      if (cfg.precompute_ref_log_probs) {
        const model = refModel ?? s.policy;
        const maxLength = cfg.max_length > 0 ? cfg.max_length : null;
        const pass = async (examples: KtoExample[], label: string, batchSize: number): Promise<Float64Array[]> => {
          const bar = progress(`reference log-probs (${label})`, examples.length, { silent: opts.quiet });
          try {
            return await computeKtoReference(
              model,
              refModel === null,
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
        // The cache key: reference weights, each example's prompt, completion and KL completion, and the cut.
        const key = (examples: KtoExample[]): string =>
          refCacheFile(
            cfg.ref_model || cfg.model_name_or_path,
            cfg.ref_model ? '' : cfg.adapter,
            examples.map((e) => ({
              promptIds: e.promptIds,
              chosenIds: e.completionIds,
              rejectedIds: e.klCompletionIds,
            })),
            `kto max_length=${maxLength} frozen_dtype=${cfg.frozen_dtype}`,
          );
        const bs = cfg.per_device_train_batch_size;
        const trainEx = withKlCompletions(train.examples, bs);
        // --shard i/n: this part of the pass only, then stop (train/ref-shard.ts; a run without --shard merges the parts).
        const shard = cfg.shard ? parseShard(cfg.shard) : null;
        const refPass = (ex: KtoExample[], label: string, b: number) =>
          shardedReference(
            key(ex),
            ex.length,
            cfg.precompute_ref_batch_size || b,
            shard,
            (start, end) => pass(ex.slice(start, end), label, b),
            log,
          );
        const trainRef = await refPass(trainEx, 'train', bs);
        const evalEx = evalData ? withKlCompletions(evalData.examples, bs) : null;
        const evalRef = evalEx ? await refPass(evalEx, 'eval', cfg.per_device_eval_batch_size) : null;
        if (shard || !trainRef) return { objective: null };
        reference = { kind: 'cached', train: trainRef, eval: evalRef };
        if (refModel) for (const t of refModel.params.values()) t.dispose(); // the copy is no longer needed
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
  });
}
