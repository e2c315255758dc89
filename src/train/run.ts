// The run skeleton of every trainer (runMethod: dpo, sft, kto, reward, grpo, rloo) and `tsdpo dpo` /
// `tsdpo sft` on it: engine, tokenizer, model (+ LoRA), data, the method's objective, the shared
// training loop, and the final model (or adapter) written into output_dir with the tokenizer files,
// loadable by tsdpo and transformers.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { listSplits } from '../data/splits.js';
import { loadPreferenceDataset, type PreferenceDataset } from '../data/pipeline.js';
import type { SftDataset } from '../data/sft.js';
import { padIdFor } from '../data/collate.js';
import { getBackend } from '../core/backend.js';
import { parseShard } from '../eval/shard.js';
import { initEngine } from '../engine.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { loadModel, restoreModel, saveModel, trainAll } from '../models/load.js';
import { loadAdapter, newAdapter, restoreAdapter, saveAdapter } from '../models/lora.js';
import type { CausalLM } from '../models/model.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { COMMON_OPTIONS, type CommonConfig, type DpoConfig, type SftConfig } from './config.js';
import { checkDpoConfig, computeReferenceLogps, dpoNotices, DpoObjective, ldAlphaOf, type Reference } from './dpo.js';
import { needsReference as lossesNeedReference } from './losses.js';
import type { NamedParam } from './optim.js';
import { frozenDtypeOf, MemoryReport } from './memory.js';
import { progress } from './progress.js';
import { shardedReference } from './ref-shard.js';
import { loadSftData, saveChatTemplate, sftNotices, SftObjective, sftPadId } from './sft.js';
import {
  prepareOutputDir,
  publishFiles,
  train as runTraining,
  type Objective,
  type TrainOptions,
  type TrainResult,
} from './trainer.js';

export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'generation_config.json',
  'vocab.json',
  'merges.txt',
];

/** A finished run from files: steps, every metrics line, what the data held, and the output folder. */
export interface RunSummary extends TrainResult {
  report: Record<string, unknown>;
  output: string;
}

export type Log = (line: string) => void;

/** How a run reports: log lines (default: stderr), no progress bar (quiet), every metrics line and step. */
export type RunOptions = Pick<TrainOptions, 'log' | 'quiet' | 'onRecord' | 'onStep'>;

/** The model a run trains: its parameters, and how its weights are written and restored. */
export interface TrainedModel {
  /** The decoder (the whole model, or a classifier's body: what --memory_report counts). */
  policy: CausalLM;
  params: NamedParam[];
  lora: boolean;
  loraDropout: number;
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
  /** Files of model_name_or_path copied beside the final weights (those that exist). */
  finalFiles: string[];
}

/** The engine's side of a run: the tokenizer, and the trained model M. */
export type Setup<M extends TrainedModel = TrainedModel> = M & {
  tok: TextTokenizer;
  /** What frozen models (reference, LoRA base) load as (frozen_dtype). */
  frozenDtype: 'f32' | 'bf16';
};

/** Builds the trained model of a run from its config (after the engine and tokenizer are up). */
export type ModelBuilder<C extends CommonConfig, M extends TrainedModel = TrainedModel> = (
  cfg: C,
  env: { tok: TextTokenizer; frozenDtype: 'f32' | 'bf16'; log: Log },
) => M;

/** The engine, the tokenizer and the trained model (default: a causal LM, whole or under LoRA). */
export async function setup<C extends CommonConfig & { disable_dropout?: boolean }>(cfg: C, log: Log): Promise<Setup>;
export async function setup<C extends CommonConfig, M extends TrainedModel>(
  cfg: C,
  log: Log,
  build: ModelBuilder<C, M>,
): Promise<Setup<M>>;
export async function setup<C extends CommonConfig & { disable_dropout?: boolean }>(
  cfg: C,
  log: Log,
  build: ModelBuilder<C> = causalLm,
): Promise<Setup> {
  if (!cfg.model_name_or_path) throw new Error('--model_name_or_path (--model) is required');
  if (!cfg.dataset) throw new Error('--dataset (--data) is required');
  prepareOutputDir(cfg);
  await initEngine({ device: cfg.device, threads: cfg.threads || undefined, log });
  const tok = loadTokenizer(cfg.model_name_or_path);
  const frozenDtype = frozenDtypeOf(cfg, getBackend(), log);
  return { tok, frozenDtype, ...build(cfg, { tok, frozenDtype, log }) };
}

/** A causal LM from model_name_or_path, trained whole or under a new or saved LoRA adapter. */
export function causalLm(
  cfg: CommonConfig & { disable_dropout?: boolean },
  { frozenDtype, log }: { frozenDtype: 'f32' | 'bf16'; log: Log },
): TrainedModel {
  const lora = cfg.use_peft || cfg.adapter !== '';
  const policy = loadModel(cfg.model_name_or_path, { frozenDtype: lora ? frozenDtype : 'f32' });
  policy.gradientCheckpointing = cfg.gradient_checkpointing;
  let params: NamedParam[];
  let loraDropout = 0;
  if (lora) {
    const info = cfg.adapter
      ? loadAdapter(policy, cfg.adapter)
      : newAdapter(policy, {
          r: cfg.lora_r,
          alpha: cfg.lora_alpha,
          targetModules:
            cfg.lora_target_modules.length === 1 && cfg.lora_target_modules[0] === 'all-linear'
              ? 'all-linear'
              : cfg.lora_target_modules,
          dropout: cfg.lora_dropout,
          seed: cfg.seed,
        });
    params = info.params;
    loraDropout = cfg.disable_dropout ? 0 : info.config.lora_dropout;
  } else {
    params = trainAll(policy);
  }
  const count = params.reduce((a, p) => a + p.tensor.size, 0);
  log(
    `model ${cfg.model_name_or_path} (${policy.family}, ${(countAll(policy) / 1e6).toFixed(2)}M parameters); training ${(count / 1e6).toFixed(3)}M${lora ? ' LoRA' : ''} parameters`,
  );
  const saveWeights = async (dir: string): Promise<void> => {
    if (lora) await saveAdapter(policy, dir, cfg.model_name_or_path);
    else await saveModel(policy, dir, { generationConfig: generationConfigOf(cfg.model_name_or_path) });
  };
  // A checkpoint restores in place, with the shape checks of loading a model or an adapter.
  const loadWeights = async (dir: string): Promise<void> => {
    if (lora) restoreAdapter(policy, dir);
    else restoreModel(policy, dir);
  };
  return { policy, params, lora, loraDropout, saveWeights, loadWeights, finalFiles: lora ? [] : TOKENIZER_FILES };
}

function countAll(m: CausalLM): number {
  let n = 0;
  for (const t of m.params.values()) n += t.size;
  return n;
}

function generationConfigOf(dir: string): Record<string, unknown> | undefined {
  const f = join(dir, 'generation_config.json');
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined;
}

/** The eval split: --eval_dataset, else the test/validation split of a --data folder. */
export function evalSource(cfg: CommonConfig): { path: string; split: string } | null {
  if (cfg.eval_dataset)
    return { path: cfg.eval_dataset, split: listSplits(cfg.eval_dataset).includes('test') ? 'test' : 'train' };
  if (existsSync(cfg.dataset) && statSync(cfg.dataset).isDirectory()) {
    const splits = listSplits(cfg.dataset);
    const s = splits.find((x) => x === 'test' || x === 'validation');
    if (s) return { path: cfg.dataset, split: s };
  }
  return null;
}

/** Writes the final weights and the tokenizer files into output_dir. */
export async function finish(cfg: CommonConfig, s: Setup): Promise<void> {
  const staging = join(cfg.output_dir, `.final-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  await s.saveWeights(staging);
  for (const f of s.finalFiles) {
    const src = join(cfg.model_name_or_path, f);
    if (existsSync(src) && !existsSync(join(staging, f))) copyFileSync(src, join(staging, f));
  }
  publishFiles(staging, cfg.output_dir);
}

/** The data options (columns, truncation, skipping) of a training config. */
export function dataOptions(cfg: CommonConfig) {
  return {
    // A named prompt column must exist; the default one may be absent (implicit prompt, Anthropic HH).
    columns: {
      prompt: cfg.prompt_column === COMMON_OPTIONS.prompt_column.default ? undefined : cfg.prompt_column,
      chosen: cfg.chosen_column,
      rejected: cfg.rejected_column,
    },
    skipInvalid: cfg.skip_invalid,
    maxLength: cfg.max_length > 0 ? cfg.max_length : null,
    maxPromptLength: cfg.max_prompt_length > 0 ? cfg.max_prompt_length : null,
    maxCompletionLength: cfg.max_completion_length > 0 ? cfg.max_completion_length : null,
    truncationMode: cfg.truncation_mode,
  };
}

export function reportLine(name: string, r: PreferenceDataset['report'] | SftDataset['report']): string {
  return `${name}: ${r.rows} examples from ${r.read} rows (${r.format}); truncated ${r.truncated}, dropped ${r.dropped} (prompt alone too long), skipped ${r.skippedInvalid} invalid`;
}

/** Cache of reference log-probs: keyed by the reference weights' identity, the tokenized data and `salt` (the options that change them). */
export function refCacheFile(
  refDir: string,
  adapterDir: string,
  examples: PreferenceDataset['examples'],
  salt = '',
): string {
  const h = createHash('sha256');
  h.update(salt);
  for (const dir of [refDir, adapterDir].filter(Boolean)) {
    h.update(realpathSync(dir));
    for (const f of ['model.safetensors', 'model.safetensors.index.json', 'adapter_model.safetensors', 'config.json']) {
      const p = join(dir, f);
      if (existsSync(p)) {
        const st = statSync(p);
        h.update(`${f}:${st.size}:${st.mtimeMs}`);
      }
    }
  }
  for (const e of examples) h.update(`${e.promptIds.join(',')}|${e.chosenIds.join(',')}|${e.rejectedIds.join(',')}\n`);
  const dir = process.env.TSDPO_CACHE_DIR ?? join(homedir(), '.cache', 'tsdpo');
  return join(dir, `ref-logps-${h.digest('hex').slice(0, 32)}.json`);
}

export async function cachedReference(
  file: string,
  compute: () => Promise<Float64Array[]>,
  log: Log,
): Promise<Float64Array[]> {
  if (existsSync(file)) {
    log(`reference log-probs: reusing ${file}`);
    return (JSON.parse(readFileSync(file, 'utf8')) as number[][]).map((r) => Float64Array.from(r));
  }
  const values = await compute();
  mkdirSync(join(file, '..'), { recursive: true });
  writeJsonAtomic(
    file,
    values.map((r) => Array.from(r)),
  );
  log(`reference log-probs: cached in ${file}`);
  return values;
}

export async function runDpo(cfg: DpoConfig, opts: RunOptions = {}): Promise<RunSummary> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  checkDpoConfig(cfg);
  for (const line of dpoNotices(cfg)) log(line);
  return runMethod(cfg, opts, {
    command: 'dpo',
    load: (path, split, s) => loadPreferenceDataset(path, s.tok, { ...dataOptions(cfg), split }),
    objective: async (s, train, evalData) => {
      const padId = padIdFor(s.tok);
      const needsReference = lossesNeedReference(cfg.loss_type);
      const loadReference = (): CausalLM => {
        const m = loadModel(cfg.ref_model || cfg.model_name_or_path, { frozenDtype: s.frozenDtype });
        // Training a saved adapter: the reference is a frozen copy of it (TRL 1.13's "ref" adapter).
        if (!cfg.ref_model && cfg.adapter) loadAdapter(m, cfg.adapter);
        return m;
      };
      if (cfg.shard && !(needsReference && cfg.precompute_ref_log_probs))
        throw new Error(
          `--shard ${cfg.shard}: splits the reference pass of precompute_ref_log_probs; set --precompute_ref_log_probs (with a loss that uses the reference)`,
        );
      const adapterOff = s.lora && !cfg.ref_model && !cfg.adapter;
      let reference: Reference;
      let refModel: CausalLM | null = null;
      if (!needsReference) reference = { kind: 'none' };
      else if (adapterOff) reference = { kind: 'adapter-off' };
      else if (!cfg.precompute_ref_log_probs) reference = { kind: 'model', model: (refModel = loadReference()) };
      else reference = { kind: 'none' }; // replaced by the precomputed log-probs below
      if (needsReference && cfg.precompute_ref_log_probs) {
        // A separate reference is loaded only when a cache misses, and freed before training begins.
        let copy: CausalLM | null = null;
        const refDir = cfg.ref_model || cfg.model_name_or_path;
        const adapterDir = cfg.ref_model ? '' : cfg.adapter;
        const pass = async (
          examples: PreferenceDataset['examples'],
          label: string,
          batchSize: number,
        ): Promise<Float64Array[]> => {
          const bar = progress(`reference log-probs (${label})`, examples.length, { silent: opts.quiet });
          try {
            const model = adapterOff ? s.policy : (copy ??= loadReference());
            return await computeReferenceLogps(
              model,
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
        // --shard i/n: this part of the pass only, then stop (train/ref-shard.ts; a run without --shard merges the parts).
        const shard = cfg.shard ? parseShard(cfg.shard) : null;
        const refPass = (ex: PreferenceDataset['examples'], label: string, bs: number) =>
          shardedReference(
            refCacheFile(refDir, adapterDir, ex, salt),
            ex.length,
            cfg.precompute_ref_batch_size || bs,
            shard,
            (a, b) => pass(ex.slice(a, b), label, bs),
            log,
          );
        const trainRef = await refPass(train.examples, 'train', cfg.per_device_train_batch_size);
        const evalRef = evalData ? await refPass(evalData.examples, 'eval', cfg.per_device_eval_batch_size) : null;
        if (shard || !trainRef) return { objective: null };
        reference = { kind: 'cached', train: trainRef, eval: evalRef };
        if (copy) for (const t of (copy as CausalLM).params.values()) t.dispose(); // the copy is no longer needed
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
  });
}

export async function runSft(cfg: SftConfig, opts: RunOptions = {}): Promise<RunSummary> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  for (const n of sftNotices(cfg)) log(n);
  return runMethod(
    cfg,
    { ...opts, log },
    {
      command: 'sft',
      load: (path, split, s, isEval) => loadSftData(cfg, s.tok, dataOptions(cfg), path, split, isEval),
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
      afterSave: () => saveChatTemplate(cfg),
    },
  );
}

/** What one method adds to the run skeleton: how to read a split, and its objective. */
export interface MethodParts<
  C extends CommonConfig,
  D extends { examples: unknown[]; report: unknown },
  M extends TrainedModel = TrainedModel,
> {
  /** The command's name (recorded in trainer_state.json). */
  command: string;
  /** The trained model (default: causalLm, a causal LM whole or under LoRA). */
  model?: ModelBuilder<C, M>;
  /** The report line of a loaded split (default: reportLine's, for preference and SFT data). */
  describe?(name: string, report: D['report']): string;
  /** No eval split even when the data folder has one (GRPO / RLOO: prompts only). */
  noEval?: boolean;
  /** What the training data is made of, for the error when none is left (default 'examples'). */
  unit?: string;
  /** Reads and tokenizes one split of a dataset path (isEval: the eval split, which SFT may pack differently). */
  load(path: string, split: string, s: Setup<M>, isEval: boolean): Promise<D>;
  /** Notices about the training data, logged after its report (e.g. KTO's weight advice). */
  notices?(train: D): string[];
  /**
   * The objective over the loaded data, and the separate reference model if there is one (for --memory_report);
   * null when the run ends before training (a --shard part of the reference pass).
   */
  objective(
    s: Setup<M>,
    train: D,
    evalData: D | null,
    log: Log,
  ): Promise<{ objective: Objective | null; refModel?: CausalLM | null }>;
  /** Files written beside the saved model once training ends (e.g. SFT's chat template, PPO's critic). */
  afterSave?(): void | Promise<void>;
}

/**
 * The one skeleton of a training run from files, shared by dpo, sft and kto: engine, tokenizer and
 * model (setup), the train and eval splits with their reports, the method's objective, the loop, and
 * the final model written into output_dir.
 */
export async function runMethod<
  C extends CommonConfig & { disable_dropout?: boolean },
  D extends { examples: unknown[]; report: unknown },
  M extends TrainedModel = TrainedModel,
>(cfg: C, opts: RunOptions, parts: MethodParts<C, D, M>): Promise<RunSummary> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const describe =
    parts.describe ??
    ((name: string, r: D['report']) => reportLine(name, r as PreferenceDataset['report'] | SftDataset['report']));
  const s = (parts.model ? await setup(cfg, log, parts.model) : await setup(cfg, log)) as Setup<M>;
  const train = await parts.load(cfg.dataset, 'train', s, false);
  log(describe('train data', train.report));
  if (train.examples.length === 0)
    throw new Error(`${cfg.dataset}: no training ${parts.unit ?? 'examples'} left (see the report above)`);
  for (const line of parts.notices?.(train) ?? []) log(line);
  const ev = parts.noEval ? null : evalSource(cfg);
  const evalData = ev ? await parts.load(ev.path, ev.split, s, true) : null;
  if (evalData) log(describe('eval data', evalData.report));
  const { objective, refModel = null } = await parts.objective(s, train, evalData, log);
  const report = { train: train.report, eval: evalData?.report ?? null };
  if (objective === null) return { steps: 0, history: [], report, output: cfg.output_dir };
  const memory = cfg.memory_report ? new MemoryReport(getBackend(), s.policy, s.params, refModel) : null;
  const result = await runTraining(cfg, objective, { ...opts, record: { command: parts.command, ...cfg }, memory });
  if (!result.stopped) {
    await finish(cfg, s);
    await parts.afterSave?.();
  }
  return { ...result, report, output: cfg.output_dir };
}
