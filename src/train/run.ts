// Runs from files (runMethod: dpo, sft, kto, reward, grpo, rloo) on the run skeleton (train/skeleton.ts,
// shared with the in-memory API) and `tsdpo dpo` / `tsdpo sft` on it: engine, tokenizer, model (+ LoRA)
// and splits read from disk, the reference loaded and its log-probs cached, and the final model (or
// adapter) written into output_dir with the tokenizer files, loadable by tsdpo and transformers.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { listSplits } from '../data/splits.js';
import { loadRecords } from '../data/load.js';
import { getBackend } from '../core/backend.js';
import { parseShard } from '../eval/shard.js';
import { initEngine } from '../engine.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { loadModel, restoreModel, saveModel, trainAll } from '../models/load.js';
import { loadAdapter, newAdapter, restoreAdapter, saveAdapter } from '../models/lora.js';
import type { CausalLM } from '../models/model.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { CommonConfig, DpoConfig, SftConfig } from './config.js';
import { dataOptions, reportLine } from './data-options.js';
import { dpoMethod, sftMethod, type ReferenceSource } from './methods.js';
import type { NamedParam } from './optim.js';
import { frozenDtypeOf } from './memory.js';
import { progress } from './progress.js';
import { shardedReference } from './ref-shard.js';
import { readChatTemplate, saveChatTemplate } from './sft-files.js';
import {
  runSkeleton,
  type Log,
  type MethodCore,
  type RowMethod,
  type RunOptions,
  type Setup,
  type TrainedModel,
} from './skeleton.js';
import { prepareOutputDir, publishFiles, train as runTraining, type TrainResult } from './trainer.js';

export type { Log, RunOptions, Setup, TrainedModel } from './skeleton.js';
export { dataOptions, reportLine };

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
    `model ${cfg.model_name_or_path} (${policy.family}, ${(countAll(policy) / 1e6).toFixed(2)}M parameters); ` +
      `training ${(count / 1e6).toFixed(3)}M${lora ? ' LoRA' : ''} parameters`,
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
  return {
    policy,
    params,
    lora,
    newLora: lora && !cfg.adapter,
    loraDropout,
    saveWeights,
    loadWeights,
    finalFiles: lora ? [] : TOKENIZER_FILES,
  };
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

/** Cache of reference log-probs: keyed by the reference weights' identity, the tokenized data and `salt` (the options that change them). */
export function refCacheFile(
  refDir: string,
  adapterDir: string,
  examples: readonly { promptIds: number[]; chosenIds: number[]; rejectedIds: number[] }[],
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

/**
 * The reference of a DPO / KTO run from files: a frozen copy of ref_model (else of model_name_or_path, with
 * the saved adapter when one is trained), and precomputed log-probs through the cache and --shard.
 */
export function fileReference(
  cfg: CommonConfig & { ref_model: string; shard: string },
  opts: RunOptions,
): ReferenceSource {
  const shard = cfg.shard ? parseShard(cfg.shard) : null;
  const refDir = cfg.ref_model || cfg.model_name_or_path;
  const adapterDir = cfg.ref_model ? '' : cfg.adapter;
  return {
    separate: cfg.ref_model !== '' || cfg.adapter !== '',
    owned: true,
    load: (s) => {
      const m = loadModel(refDir, { frozenDtype: s.frozenDtype });
      // Training a saved adapter: the reference is a frozen copy of it (TRL 1.13's "ref" adapter).
      if (adapterDir) loadAdapter(m, adapterDir);
      return m;
    },
    // --shard i/n: this part of the pass only, then stop (train/ref-shard.ts; a run without --shard merges the parts).
    precompute: (key, batchSize, compute, log) =>
      shardedReference(
        refCacheFile(refDir, adapterDir, key.examples, key.salt),
        key.examples.length,
        batchSize,
        shard,
        compute,
        log,
      ),
    stopsAfterPass: shard !== null,
    progress: (label, n) => progress(label, n, { silent: opts.quiet }),
  };
}

/** Files-side loading of a method over rows: the records of a split read from disk, then the method's own. */
export function fromFiles<D extends { examples: unknown[]; report: unknown }>(
  method: RowMethod<D>,
): MethodParts<CommonConfig, D> {
  return {
    ...method,
    load: async (path, split, s, isEval) => {
      const { records, files } = await loadRecords(path, { split });
      return method.prepare(records, s.tok, { name: split, isEval, files });
    },
  };
}

export async function runDpo(cfg: DpoConfig, opts: RunOptions = {}): Promise<RunSummary> {
  return runMethod(cfg, opts, fromFiles(dpoMethod(cfg, fileReference(cfg, opts))));
}

export async function runSft(cfg: SftConfig, opts: RunOptions = {}): Promise<RunSummary> {
  const template = cfg.chat_template_path ? readChatTemplate(cfg.chat_template_path) : null;
  return runMethod(cfg, opts, { ...fromFiles(sftMethod(cfg, template)), afterSave: () => saveChatTemplate(cfg) });
}

/** What one method adds to the run skeleton from files: how to read a split, and its objective. */
export interface MethodParts<
  C extends CommonConfig,
  D extends { examples: unknown[]; report: unknown },
  M extends TrainedModel = TrainedModel,
> extends MethodCore<D, M> {
  /** The trained model (default: causalLm, a causal LM whole or under LoRA). */
  model?: ModelBuilder<C, M>;
  /** No eval split even when the data folder has one (GRPO / RLOO: prompts only). */
  noEval?: boolean;
  /** Reads and tokenizes one split of a dataset path (isEval: the eval split, which SFT may pack differently). */
  load(path: string, split: string, s: Setup<M>, isEval: boolean): Promise<D>;
  /** Files written beside the saved model once training ends (e.g. SFT's chat template, PPO's critic). */
  afterSave?(): void | Promise<void>;
}

/**
 * A training run from files on the one skeleton (train/skeleton.ts), shared by every method: engine,
 * tokenizer and model (setup), the train and eval splits read from disk, the skeleton's steps (reports,
 * notices, objective, memory report, the loop with its files), and the final model written into output_dir.
 */
export async function runMethod<
  C extends CommonConfig & { disable_dropout?: boolean },
  D extends { examples: unknown[]; report: unknown },
  M extends TrainedModel = TrainedModel,
>(cfg: C, opts: RunOptions, parts: MethodParts<C, D, M>): Promise<RunSummary> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  parts.begin?.(log);
  const s = (parts.model ? await setup(cfg, log, parts.model) : await setup(cfg, log)) as Setup<M>;
  const ev = parts.noEval ? null : evalSource(cfg);
  const { result, report } = await runSkeleton(cfg, { ...opts, log }, runTraining, () => s, parts, {
    name: cfg.dataset,
    train: () => parts.load(cfg.dataset, 'train', s, false),
    eval: ev ? () => parts.load(ev.path, ev.split, s, true) : null,
  });
  if (result === null) return { steps: 0, history: [], report, output: cfg.output_dir };
  if (!result.stopped) {
    await finish(cfg, s);
    await parts.afterSave?.();
  }
  return { ...result, report, output: cfg.output_dir };
}
