// The training loop with its files (Node): train/loop.ts's loop writing metrics.jsonl, checkpoints
// and trainer_state.json into the output_dir, with a progress bar on the terminal; and the output
// folder's other chores. Everything of the loop is re-exported, so methods import from here or loop.ts.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.js';
import { latestCheckpoint, readOptimizerState, readTrainerState, saveCheckpoint, STATE_FILE } from './checkpoint.js';
import type { CommonConfig } from './config.js';
import {
  train as loop,
  type Objective,
  type RunFolder,
  type TrainConfig,
  type TrainOptions,
  type TrainResult,
} from './loop.js';
import { progress } from './progress.js';

export * from './loop.js';

const RUN_FILES = (e: string): boolean => e === STATE_FILE || e === 'metrics.jsonl' || e.startsWith('checkpoint-');

/** Refuses to reuse an output folder that already holds a run (unless overwrite or resume). */
export function prepareOutputDir(cfg: CommonConfig): void {
  if (!cfg.output_dir) throw new Error('--output_dir (--output) is required');
  if (existsSync(cfg.output_dir) && !cfg.resume_from_checkpoint) {
    const run = readdirSync(cfg.output_dir).filter(RUN_FILES);
    if (run.length > 0 && !cfg.overwrite_output_dir) {
      throw new Error(
        `${cfg.output_dir} already holds a training run (${run.slice(0, 3).join(', ')}); ` +
          'pass --resume to continue it or --overwrite to replace it',
      );
    }
    for (const e of run) rmSync(join(cfg.output_dir, e), { recursive: true, force: true });
  }
  mkdirSync(cfg.output_dir, { recursive: true });
}

/**
 * Moves the files of `staging` into `dir` one by one (each rename is atomic), replacing files of
 * the same name and removing weight files of an earlier save that the new one does not have.
 */
export function publishFiles(staging: string, dir: string): void {
  const fresh = new Set(readdirSync(staging));
  const isWeights = (e: string): boolean => /\.safetensors$|\.safetensors\.index\.json$/.test(e);
  for (const e of readdirSync(dir)) if (isWeights(e) && !fresh.has(e)) rmSync(join(dir, e), { force: true });
  for (const e of fresh) renameSync(join(staging, e), join(dir, e));
  rmSync(staging, { recursive: true, force: true });
}

/** The run folder of `out`: metrics.jsonl, checkpoint-<step> folders and trainer_state.json. */
export function runFolder(out: string): RunFolder {
  const metricsFile = join(out, 'metrics.jsonl');
  return {
    latest: () => {
      const ck = latestCheckpoint(out);
      return ck && { dir: ck.dir, state: readTrainerState(ck.dir), optimizer: readOptimizerState(ck.dir) };
    },
    writeMetrics: (lines) =>
      writeFileSync(metricsFile, lines.map((h) => JSON.stringify(h)).join('\n') + (lines.length ? '\n' : '')),
    appendMetrics: (line) => appendFileSync(metricsFile, `${JSON.stringify(line)}\n`),
    checkpoint: (state, optimizer, saveWeights, keep) => saveCheckpoint(out, state, optimizer, saveWeights, keep),
    writeState: (state) => writeJsonAtomic(join(out, STATE_FILE), state),
  };
}

/**
 * Runs the loop (train/loop.ts). With an output_dir it writes metrics.jsonl, checkpoints and
 * trainer_state.json there; with output_dir '' it keeps everything in memory.
 */
export function train(cfg: TrainConfig, obj: Objective, opts: TrainOptions = {}): Promise<TrainResult> {
  return loop(cfg, obj, { ...opts, folder: cfg.output_dir ? runFolder(cfg.output_dir) : undefined, progress });
}

export function readMetrics(outputDir: string): Record<string, number>[] {
  const file = join(outputDir, 'metrics.jsonl');
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
