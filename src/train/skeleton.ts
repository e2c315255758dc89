// The run skeleton every trainer shares, with no Node module, so that runs from files (train/run.ts,
// `tsdpo <method>`, runTraining) and runs in memory (api/train.ts, browsers included) take the same
// steps: the train and eval data with their reports and notices, the method's objective, the memory
// report, and the shared loop. What differs stays with the caller: where the model, the tokenizer and
// the rows come from, which loop runs (trainer.ts's, with files and a progress bar, or loop.ts's), and
// the final save.
import { getBackend } from '../core/backend.js';
import type { PreferenceDataset } from '../data/pipeline.js';
import type { SftDataset } from '../data/sft.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { CommonConfig } from './config.js';
import { reportLine } from './data-options.js';
import type { Objective, TrainConfig, TrainOptions, TrainResult } from './loop.js';
import { MemoryReport } from './memory.js';
import type { NamedParam } from './optim.js';

export type Log = (line: string) => void;

/** How a run reports: log lines (default: stderr), no progress bar (quiet), every metrics line and step. */
export type RunOptions = Pick<TrainOptions, 'log' | 'quiet' | 'onRecord' | 'onStep'>;

/** The model a run trains: its parameters, and how its weights are written and restored. */
export interface TrainedModel {
  /** The decoder (the whole model, or a classifier's body: what --memory_report counts). */
  policy: CausalLM;
  params: NamedParam[];
  lora: boolean;
  /** A LoRA adapter made for this run (not a saved or attached one): the base model under it is a reference. */
  newLora?: boolean;
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

/** What one method adds to the skeleton, wherever its model and data come from. */
export interface MethodCore<D extends { examples: unknown[]; report: unknown }, M extends TrainedModel = TrainedModel> {
  /** The command's name (recorded in trainer_state.json). */
  command: string;
  /** Checks of the configuration and notices about it, before anything is loaded. */
  begin?(log: Log): void;
  /** The report line of a split (default: reportLine's, for preference and SFT data). */
  describe?(name: string, report: D['report']): string;
  /** What the training data is made of, for the error when none is left (default 'examples'). */
  unit?: string;
  /** Notices about the training data, logged after its report (e.g. KTO's weight advice). */
  notices?(train: D): string[];
  /**
   * The objective over the data, and the separate reference model if there is one (for --memory_report);
   * null when the run ends before training (a --shard part of the reference pass).
   */
  objective(
    s: Setup<M>,
    train: D,
    evalData: D | null,
    log: Log,
  ): Promise<{ objective: Objective | null; refModel?: CausalLM | null }>;
}

/** A method whose data are rows (records read from a split, or rows given in memory). */
export interface RowMethod<D extends { examples: unknown[]; report: unknown }> extends MethodCore<D> {
  /** Tokenizes (and arranges) the rows of a split; `files` are where they were read from. */
  prepare(rows: unknown[], tok: TextTokenizer, split: { name: string; isEval: boolean; files?: string[] }): D;
}

/** A run's data: `name` for errors (the dataset path, or the call), the train split, and the eval split if any. */
export interface RunData<D> {
  name: string;
  train(): Promise<D>;
  eval: (() => Promise<D>) | null;
}

/** The loop that runs: trainer.ts's (files, progress bar) or loop.ts's (in memory). */
export type Loop = (cfg: TrainConfig, obj: Objective, opts: TrainOptions) => Promise<TrainResult>;

/**
 * The steps between the engine and the final save: the splits with their reports, the notices, the
 * trained model (`model`, called once the data are in: in memory, a new LoRA adapter is attached only
 * to a run whose data are good), the objective, the memory report and the loop. `result` is null when
 * the method ends before training.
 */
export async function runSkeleton<
  C extends CommonConfig,
  D extends { examples: unknown[]; report: unknown },
  M extends TrainedModel = TrainedModel,
>(
  cfg: C,
  opts: RunOptions & { log: Log },
  loop: Loop,
  model: () => Setup<M>,
  parts: MethodCore<D, M>,
  data: RunData<D>,
): Promise<{ result: TrainResult | null; report: { train: D['report']; eval: D['report'] | null } }> {
  const { log } = opts;
  const describe =
    parts.describe ??
    ((name: string, r: D['report']) => reportLine(name, r as PreferenceDataset['report'] | SftDataset['report']));
  const train = await data.train();
  log(describe('train data', train.report));
  if (train.examples.length === 0)
    throw new Error(`${data.name}: no training ${parts.unit ?? 'examples'} left (see the report above)`);
  for (const line of parts.notices?.(train) ?? []) log(line);
  const evalData = data.eval ? await data.eval() : null;
  if (evalData) log(describe('eval data', evalData.report));
  const s = model();
  const { objective, refModel = null } = await parts.objective(s, train, evalData, log);
  const report = { train: train.report, eval: evalData?.report ?? null };
  if (objective === null) return { result: null, report };
  const memory = cfg.memory_report ? new MemoryReport(getBackend(), s.policy, s.params, refModel) : null;
  const result = await loop(cfg, objective, { ...opts, record: { command: parts.command, ...cfg }, memory });
  return { result, report };
}
