// `tsdpo dpo` and `tsdpo sft` end to end: engine, tokenizer, data, model (+ LoRA), reference,
// the training loop, and the final model (or adapter) written into output_dir with the tokenizer
// files, loadable by tsdpo and transformers.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { listSplits } from '../data/splits.js';
import { loadPreferenceDataset, type PreferenceDataset } from '../data/pipeline.js';
import { loadSftDataset, type SftDataset } from '../data/sft.js';
import { padIdFor } from '../data/collate.js';
import { getBackend } from '../core/backend.js';
import { initEngine, type DeviceName } from '../engine.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { loadModel, saveModel, trainAll } from '../models/load.js';
import { loadAdapter, newAdapter, saveAdapter } from '../models/lora.js';
import type { CausalLM } from '../models/model.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { COMMON_OPTIONS, type CommonConfig, type DpoConfig, type SftConfig } from './config.js';
import { checkDpoConfig, computeReferenceLogps, dpoNotices, DpoObjective, ldAlphaOf, REFERENCE_FREE, type Reference } from './dpo.js';
import type { NamedParam } from './optim.js';
import { frozenDtypeOf, MemoryReport } from './memory.js';
import { progress } from './progress.js';
import { SftObjective } from './sft.js';
import { prepareOutputDir, publishFiles, train as runTraining, type TrainResult } from './trainer.js';

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'generation_config.json', 'vocab.json', 'merges.txt'];

export interface RunSummary extends TrainResult {
  report: Record<string, unknown>;
  output: string;
}

export type Log = (line: string) => void;

export interface Setup {
  tok: TextTokenizer;
  policy: CausalLM;
  params: NamedParam[];
  lora: boolean;
  loraDropout: number;
  /** What frozen models (reference, LoRA base) load as (frozen_dtype). */
  frozenDtype: 'f32' | 'bf16';
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
}

export async function setup(cfg: CommonConfig & { disable_dropout?: boolean }, log: Log): Promise<Setup> {
  if (!cfg.model_name_or_path) throw new Error('--model_name_or_path (--model) is required');
  if (!cfg.dataset) throw new Error('--dataset (--data) is required');
  prepareOutputDir(cfg);
  await initEngine({ device: cfg.device as DeviceName, threads: cfg.threads || undefined, log });
  const tok = loadTokenizer(cfg.model_name_or_path);
  const lora = cfg.use_peft || cfg.adapter !== '';
  const frozenDtype = frozenDtypeOf(cfg, getBackend(), log);
  const policy = loadModel(cfg.model_name_or_path, { frozenDtype: lora ? frozenDtype : 'f32' });
  policy.gradientCheckpointing = cfg.gradient_checkpointing;
  let params: NamedParam[];
  let loraDropout = 0;
  if (lora) {
    const info = cfg.adapter
      ? loadAdapter(policy, cfg.adapter)
      : newAdapter(policy, { r: cfg.lora_r, alpha: cfg.lora_alpha, targetModules: cfg.lora_target_modules.length === 1 && cfg.lora_target_modules[0] === 'all-linear' ? 'all-linear' : cfg.lora_target_modules, dropout: cfg.lora_dropout, seed: cfg.seed });
    params = info.params;
    loraDropout = cfg.disable_dropout ? 0 : info.config.lora_dropout;
  } else {
    params = trainAll(policy);
  }
  const count = params.reduce((a, p) => a + p.tensor.size, 0);
  log(`model ${cfg.model_name_or_path} (${policy.family}, ${(countAll(policy) / 1e6).toFixed(2)}M parameters); training ${(count / 1e6).toFixed(3)}M${lora ? ' LoRA' : ''} parameters`);
  const saveWeights = async (dir: string): Promise<void> => {
    if (lora) await saveAdapter(policy, dir, cfg.model_name_or_path);
    else await saveModel(policy, dir, { generationConfig: generationConfigOf(cfg.model_name_or_path) });
  };
  const loadWeights = async (dir: string): Promise<void> => {
    if (lora) {
      const { loadPeftAdapter } = await import('../io/peft.js');
      const a = loadPeftAdapter(dir);
      for (const [path, m] of a.modules) {
        const l = policy.linears.get(path)?.lora;
        if (!l) throw new Error(`${dir}: checkpoint adapter has ${path}, which this run does not train`);
        l.A.backend.write(l.A.storage, m.A.toFloat32());
        l.B.backend.write(l.B.storage, m.B.toFloat32());
      }
    } else {
      const { loadHfFolder } = await import('../io/hf.js');
      const folder = loadHfFolder(dir);
      for (const [name, t] of policy.params) {
        const raw = folder.tensors.get(name);
        if (!raw) throw new Error(`${dir}: checkpoint lacks tensor ${name}`);
        t.backend.write(t.storage, raw.toFloat32());
      }
    }
  };
  return { tok, policy, params, lora, loraDropout, frozenDtype, saveWeights, loadWeights };
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
  if (cfg.eval_dataset) return { path: cfg.eval_dataset, split: listSplits(cfg.eval_dataset).includes('test') ? 'test' : 'train' };
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
  if (!s.lora) for (const f of TOKENIZER_FILES) {
    const src = join(cfg.model_name_or_path, f);
    if (existsSync(src) && !existsSync(join(staging, f))) copyFileSync(src, join(staging, f));
  }
  publishFiles(staging, cfg.output_dir);
}

function dataOptions(cfg: CommonConfig) {
  return {
    // A named prompt column must exist; the default one may be absent (implicit prompt, Anthropic HH).
    columns: {
      prompt: cfg.prompt_column === COMMON_OPTIONS.prompt_column.default ? undefined : cfg.prompt_column,
      chosen: cfg.chosen_column, rejected: cfg.rejected_column,
    },
    skipInvalid: cfg.skip_invalid,
    maxLength: cfg.max_length > 0 ? cfg.max_length : null,
    maxPromptLength: cfg.max_prompt_length > 0 ? cfg.max_prompt_length : null,
    maxCompletionLength: cfg.max_completion_length > 0 ? cfg.max_completion_length : null,
    truncationMode: cfg.truncation_mode as 'keep_end' | 'keep_start',
  };
}

export function reportLine(name: string, r: PreferenceDataset['report'] | SftDataset['report']): string {
  return `${name}: ${r.rows} examples from ${r.read} rows (${r.format}); truncated ${r.truncated}, dropped ${r.dropped} (prompt alone too long), skipped ${r.skippedInvalid} invalid`;
}

/** Cache of reference log-probs: keyed by the reference weights' identity and the tokenized data. */
export function refCacheFile(refDir: string, adapterDir: string, examples: PreferenceDataset['examples'], salt = ''): string {
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

export async function cachedReference(file: string, compute: () => Promise<Float64Array[]>, log: Log): Promise<Float64Array[]> {
  if (existsSync(file)) {
    log(`reference log-probs: reusing ${file}`);
    return (JSON.parse(readFileSync(file, 'utf8')) as number[][]).map((r) => Float64Array.from(r));
  }
  const values = await compute();
  mkdirSync(join(file, '..'), { recursive: true });
  writeJsonAtomic(file, values.map((r) => Array.from(r)));
  log(`reference log-probs: cached in ${file}`);
  return values;
}

export async function runDpo(cfg: DpoConfig, opts: { log?: Log; quiet?: boolean } = {}): Promise<RunSummary> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  for (const name of cfg.loss_type) if (!(name in (await import('./losses.js')).LOSSES)) throw new Error(`--loss_type: unknown loss '${name}'`);
  if (cfg.loss_weights.length > 0 && cfg.loss_weights.length !== cfg.loss_type.length) {
    throw new Error(`--loss_weights has ${cfg.loss_weights.length} values for ${cfg.loss_type.length} loss types`);
  }
  checkDpoConfig(cfg);
  for (const line of dpoNotices(cfg)) log(line);
  const s = await setup(cfg, log);
  const padId = padIdFor(s.tok);
  const train = await loadPreferenceDataset(cfg.dataset, s.tok, { ...dataOptions(cfg), split: 'train' });
  log(reportLine('train data', train.report));
  if (train.examples.length === 0) throw new Error(`${cfg.dataset}: no training examples left (see the report above)`);
  const ev = evalSource(cfg);
  const evalData = ev ? await loadPreferenceDataset(ev.path, s.tok, { ...dataOptions(cfg), split: ev.split }) : null;
  if (evalData) log(reportLine('eval data', evalData.report));

  const needsReference = cfg.loss_type.some((l) => !REFERENCE_FREE.has(l));
  const loadReference = (): CausalLM => {
    const m = loadModel(cfg.ref_model || cfg.model_name_or_path, { frozenDtype: s.frozenDtype });
    // Training a saved adapter: the reference is a frozen copy of it (TRL 1.13's "ref" adapter).
    if (!cfg.ref_model && cfg.adapter) loadAdapter(m, cfg.adapter);
    return m;
  };
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
    const pass = async (examples: PreferenceDataset['examples'], label: string, batchSize: number): Promise<Float64Array[]> => {
      const bar = progress(`reference log-probs (${label})`, examples.length, { silent: opts.quiet });
      try {
        const model = adapterOff ? s.policy : (copy ??= loadReference());
        return await computeReferenceLogps(model, adapterOff, examples, padId, cfg.precompute_ref_batch_size || batchSize, (d) => bar.update(d), ldAlphaOf(cfg));
      } finally {
        bar.stop();
      }
    };
    const salt = `ld_alpha=${ldAlphaOf(cfg)}`;
    const trainRef = await cachedReference(refCacheFile(refDir, adapterDir, train.examples, salt), () => pass(train.examples, 'train', cfg.per_device_train_batch_size), log);
    const evalRef = evalData ? await cachedReference(refCacheFile(refDir, adapterDir, evalData.examples, salt), () => pass(evalData.examples, 'eval', cfg.per_device_eval_batch_size), log) : null;
    reference = { kind: 'cached', train: trainRef, eval: evalRef };
    if (copy) for (const t of (copy as CausalLM).params.values()) t.dispose(); // the copy is no longer needed
  }

  const objective = new DpoObjective({
    cfg, policy: s.policy, params: s.params, reference, train, eval: evalData, padId, loraDropout: s.loraDropout,
    saveWeights: s.saveWeights, loadWeights: s.loadWeights,
  });
  const memory = cfg.memory_report ? new MemoryReport(getBackend(), s.policy, s.params, refModel) : null;
  const result = await runTraining(cfg, objective, { log: opts.log, quiet: opts.quiet, record: { command: 'dpo', ...cfg }, memory });
  if (!result.stopped) await finish(cfg, s);
  return { ...result, report: { train: train.report, eval: evalData?.report ?? null }, output: cfg.output_dir };
}

export async function runSft(cfg: SftConfig, opts: { log?: Log; quiet?: boolean } = {}): Promise<RunSummary> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const s = await setup(cfg, log);
  const padId = padIdFor(s.tok);
  const data = dataOptions(cfg);
  const sftOpts = { ...data, columns: { ...data.columns, text: cfg.dataset_text_field }, completionOnlyLoss: cfg.completion_only_loss };
  const train = await loadSftDataset(cfg.dataset, s.tok, { ...sftOpts, split: 'train' });
  log(reportLine('train data', train.report));
  if (train.examples.length === 0) throw new Error(`${cfg.dataset}: no training examples left (see the report above)`);
  const ev = evalSource(cfg);
  const evalData = ev ? await loadSftDataset(ev.path, s.tok, { ...sftOpts, split: ev.split }) : null;
  if (evalData) log(reportLine('eval data', evalData.report));
  const objective = new SftObjective({ cfg, policy: s.policy, params: s.params, train, eval: evalData, padId, loraDropout: s.loraDropout, saveWeights: s.saveWeights, loadWeights: s.loadWeights });
  const memory = cfg.memory_report ? new MemoryReport(getBackend(), s.policy, s.params, null) : null;
  const result = await runTraining(cfg, objective, { log: opts.log, quiet: opts.quiet, record: { command: 'sft', ...cfg }, memory });
  if (!result.stopped) await finish(cfg, s);
  return { ...result, report: { train: train.report, eval: evalData?.report ?? null }, output: cfg.output_dir };
}

