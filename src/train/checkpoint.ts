// Checkpoints: output_dir/checkpoint-<step>/ holds the weights (HF folder or PEFT adapter),
// the optimizer state, and trainer_state.json (step, data position, log history). Each is
// written into a temporary folder and renamed into place, so a killed run never leaves a
// half-written checkpoint; the newest complete one is where --resume continues.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { replaceDirAtomic, writeJsonAtomic } from '../io/atomic.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { f32Reader } from '../models/load.js';
import type { SamplerState } from '../data/sampler.js';
import type { Optimizer } from './optim.js';

export interface TrainerState {
  /** Optimizer steps completed. */
  global_step: number;
  /** Examples consumed / training set size. */
  epoch: number;
  sampler: SamplerState;
  /** Adam's step counter (bias correction). */
  optimizer_step: number;
  /** Every logged metrics line so far. */
  log_history: Record<string, number>[];
  /** The configuration of the run (for the record). */
  config: Record<string, unknown>;
  /** The objective's own state (Objective.state: PPO's generator and KL coefficient), if it keeps one. */
  objective?: Record<string, unknown>;
}

export const STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';

export function checkpointDirs(outputDir: string): { step: number; dir: string }[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((name) => /^checkpoint-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(outputDir, m[0], STATE_FILE)))
    .map((m) => ({ step: Number(m[1]), dir: join(outputDir, m[0]) }))
    .sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(outputDir: string): { step: number; dir: string } | null {
  const all = checkpointDirs(outputDir);
  return all.length > 0 ? all[all.length - 1] : null;
}

/**
 * Writes checkpoint-<step> atomically: `writeWeights` fills the weights into the temporary
 * folder, then optimizer state and trainer state follow; the folder appears only when complete.
 */
export async function saveCheckpoint(
  outputDir: string,
  state: TrainerState,
  optimizer: Optimizer,
  writeWeights: (dir: string) => Promise<void>,
  keepLast: number,
): Promise<string> {
  const dir = join(outputDir, `checkpoint-${state.global_step}`);
  const slots: { name: string; dtype: 'F32'; shape: number[]; data: Float32Array | (() => Float32Array) }[] = [];
  for (const [name, t] of optimizer.stateTensors())
    slots.push({ name, dtype: 'F32', shape: [...t.shape], data: await f32Reader(t) });
  // Weights are read from the device first (async), then everything is written in one atomic step.
  const staging = join(outputDir, `.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  await writeWeights(staging);
  replaceDirAtomic(dir, (tmp) => {
    rmSync(tmp, { recursive: true, force: true });
    renameSync(staging, tmp); // same file system: moves the whole folder
    writeSafetensors(join(tmp, OPTIMIZER_FILE), slots);
    writeJsonAtomic(join(tmp, STATE_FILE), state);
  });
  if (keepLast > 0) {
    const all = checkpointDirs(outputDir);
    for (const old of all.slice(0, Math.max(0, all.length - keepLast)))
      rmSync(old.dir, { recursive: true, force: true });
  }
  return dir;
}

export function readTrainerState(dir: string): TrainerState {
  const file = join(dir, STATE_FILE);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as TrainerState;
  } catch (e) {
    throw new Error(`${file}: cannot read trainer state (${(e as Error).message})`);
  }
}

export function readOptimizerState(dir: string): Map<string, Float32Array> {
  const st = readSafetensors(join(dir, OPTIMIZER_FILE));
  return new Map([...st.tensors].map(([k, t]) => [k, t.toFloat32()]));
}
