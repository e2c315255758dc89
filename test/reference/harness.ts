// The side-by-side harness: train configs with tsdpo (the library runner) and with TRL (the Python
// reference, scripts/reference/trl_run.py in the .venv-ref venv), then compare every metric TRL
// logs, step by step. Expected values always come from TRL.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { trainerEpochOrder } from '../../src/train/torch-order.js';
import { totalSteps } from '../../src/train/trainer.js';
import type { CommonConfig } from '../../src/train/config.js';
import { ROOT, toyTokenizerJson } from '../helpers/assets.js';

export const VENV_PYTHON = join(ROOT, '.venv-ref', 'bin', 'python');
export const RUNNER = join(ROOT, 'scripts', 'reference', 'trl_run.py');
export const HF_TINY = join(ROOT, 'test', 'fixtures', 'hf-tiny');

/**
 * Whether the reference venv exists. Without it the suite skips, unless TSDPO_REQUIRE_REFERENCE=1
 * (CI), where a missing venv is a failure: `bash scripts/reference/setup-venv.sh` makes it.
 */
export function referenceAvailable(): { ok: true } | { ok: false; why: string } {
  if (existsSync(VENV_PYTHON)) return { ok: true };
  const why = `no reference venv at ${VENV_PYTHON}: run \`bash scripts/reference/setup-venv.sh\` to compare against TRL 1.13`;
  if (process.env.TSDPO_REQUIRE_REFERENCE === '1') throw new Error(`TSDPO_REQUIRE_REFERENCE=1 but ${why}`);
  return { ok: false, why };
}

/** Environment of every Python child: nothing may be downloaded, caches stay in the temp folder. */
export function pythonEnv(root: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HF_HUB_OFFLINE: '1',
    HF_DATASETS_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
    HF_HOME: join(root, 'hf-home'),
    HF_DATASETS_CACHE: join(root, 'hf-datasets'),
    TQDM_DISABLE: '1',
    OMP_NUM_THREADS: '1',
    MKL_NUM_THREADS: '1',
    PYTHONHASHSEED: '0',
  };
}

/** Runs the venv's python; resolves with stdout, rejects with the tail of stderr. */
export function runPython(args: string[], root: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(VENV_PYTHON, args, { env: pythonEnv(root), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${VENV_PYTHON} ${args.join(' ')} exited ${code}:\n${err.slice(-4000)}`)),
    );
  });
}

/**
 * A model folder for both sides: an hf-tiny family's policy (or reference) weights with the toy
 * character tokenizer (ids 0..80 fit every fixture's 512-token vocabulary). addBos: the tokenizer
 * prepends <s>, as Llama's does.
 */
export function tinyFamily(
  root: string,
  family: string,
  opts: { which?: 'policy' | 'reference'; addBos?: boolean; chatTemplate?: string } = {},
): string {
  const which = opts.which ?? 'policy';
  // One folder per chat template: cases with different templates must not share a model folder.
  const chat = opts.chatTemplate
    ? `-chat-${createHash('sha256').update(opts.chatTemplate).digest('hex').slice(0, 8)}`
    : '';
  const dir = join(root, `${family}-${which}${opts.addBos ? '-bos' : ''}${chat}`);
  if (existsSync(dir)) return dir;
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json'])
    copyFileSync(join(HF_TINY, family, which, f), join(dir, f));
  const tj = toyTokenizerJson();
  if (opts.addBos) {
    tj.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    };
  }
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: '<s>',
      eos_token: '</s>',
      pad_token: '<pad>',
      add_bos_token: opts.addBos ?? false,
      add_eos_token: false,
      model_max_length: 128,
      ...(opts.chatTemplate ? { chat_template: opts.chatTemplate } : {}),
    }),
  );
  return dir;
}

/** A JSON-lines data file from rows. */
export function writeRows(root: string, name: string, rows: object[]): string {
  const file = join(root, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/** n preference rows with varied lengths: chosen positive, rejected negative. */
export function preferenceRows(n: number, offset = 0): { prompt: string; chosen: string; rejected: string }[] {
  const subjects = [
    'The movie',
    'This film',
    'The plot twist',
    'Acting',
    'The ending',
    'A story',
    'The cast',
    'Its score',
  ];
  const good = [' was great.', ' was wonderful and moving.', ' felt fresh.', ' is a joy to watch!'];
  const bad = [' was dull.', ' was awful, slow and boring.', ' felt stale.', ' is bad.'];
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    return {
      prompt: `${subjects[i % subjects.length]}${i % 3 ? ':' : ''}`,
      chosen: good[i % good.length],
      rejected: bad[(i + 1) % bad.length],
    };
  });
}

/**
 * tsdpo's example order for each epoch a config runs, for cases that hand it to TRL's sampler. (tsdpo
 * draws transformers' own order, so the suite normally lets TRL shuffle by itself.)
 */
export function samplerOrder(cfg: CommonConfig, size: number): number[][] {
  const microPerEpoch = Math.ceil(size / cfg.per_device_train_batch_size);
  const epochs = Math.ceil((totalSteps(cfg, size) * cfg.gradient_accumulation_steps) / microPerEpoch) + 1;
  const seed = cfg.data_seed >= 0 ? cfg.data_seed : cfg.seed;
  return Array.from({ length: epochs }, (_, e) => Array.from(trainerEpochOrder(size, seed, e)));
}

export interface Job {
  config: Record<string, unknown>;
  out: string;
  sampler_order?: number[][];
  /** The TRL trainer of this job, when not runTrl's (one Python process for several trainers). */
  trainer?: string;
  /** TRL's side of frozen_dtype bfloat16: the reference's and a LoRA base's matrices rounded to bf16 (trl_run.py). */
  round_frozen_bf16?: boolean;
}

/**
 * TSDPO_PARITY_FROZEN=bfloat16 runs every case of the parity suites with 16-bit frozen weights: tsdpo
 * with frozen_dtype bfloat16 (frozenOptions) and TRL on the same weights rounded to bfloat16 and back
 * (runTrl sets round_frozen_bf16). Both sides then compute the same thing in float32, so each suite
 * keeps its tolerance. Unset or float32: the suites run as they always did.
 */
export const PARITY_FROZEN: 'float32' | 'bfloat16' = (() => {
  const v = process.env.TSDPO_PARITY_FROZEN ?? 'float32';
  if (v !== 'float32' && v !== 'bfloat16')
    throw new Error(`TSDPO_PARITY_FROZEN is '${v}'; it takes float32 (the default) or bfloat16`);
  return v;
})();

/**
 * Whether a case runs with bfloat16 frozen weights under TSDPO_PARITY_FROZEN=bfloat16: all but
 * sync_ref_model, whose reference is updated from the policy (tsdpo refuses it with frozen_dtype bfloat16).
 */
export function frozenApplies(cfg: Record<string, unknown>): boolean {
  return PARITY_FROZEN === 'bfloat16' && !cfg.sync_ref_model;
}

/** The trainers that use frozen_dtype (tsdpo reward takes the option with the shared ones but keeps float32). */
const FROZEN_TRAINERS = new Set(['dpo', 'kto', 'sft', 'grpo', 'rloo']);

/** tsdpo's options for a case under TSDPO_PARITY_FROZEN (spread into its config after the case's own). */
export function frozenOptions(cfg: Record<string, unknown>): { frozen_dtype?: 'bfloat16' } {
  return frozenApplies(cfg) ? { frozen_dtype: 'bfloat16' } : {};
}

/**
 * Runs the TRL jobs in one Python process; returns each job's log_history lines. A job rounds its
 * frozen weights when it says so, or under TSDPO_PARITY_FROZEN=bfloat16 (frozenApplies) for a trainer
 * with frozen_dtype.
 */
export async function runTrl(root: string, trainer: string, jobs: Job[]): Promise<Record<string, number>[][]> {
  const file = join(root, `jobs-${trainer}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      jobs.map((j) => ({
        ...j,
        round_frozen_bf16:
          j.round_frozen_bf16 ?? (FROZEN_TRAINERS.has(j.trainer ?? trainer) && frozenApplies(j.config)),
      })),
    ),
  );
  await runPython([RUNNER, '--trainer', trainer, '--jobs', file], root).catch((e: Error) => {
    // A failed job writes {"error"} to its file; the comparison reports it per case.
    if (!jobs.every((j) => existsSync(j.out))) throw e;
  });
  return jobs.map((j) =>
    readFileSync(j.out, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l)),
  );
}

/**
 * Metrics TRL logs that tsdpo does not, each with the reason. Anything else TRL logs must be in
 * tsdpo's metrics with the same value.
 */
export const NOT_COMPARED: Record<string, string> = {
  // Wall-clock measurements: they differ from run to run on either side.
  train_runtime: 'wall-clock time',
  train_samples_per_second: 'wall-clock rate',
  train_steps_per_second: 'wall-clock rate',
  eval_runtime: 'wall-clock time',
  eval_samples_per_second: 'wall-clock rate',
  eval_steps_per_second: 'wall-clock rate',
  // transformers' estimate of floating-point operations (6 * parameters * tokens); tsdpo does not estimate it.
  total_flos: 'a FLOP estimate of transformers, not a training quantity',
};

/** Logged counters and settings that must agree exactly. */
export const EXACT = new Set(['step', 'epoch', 'learning_rate', 'num_tokens', 'eval_num_tokens']);

/** |a - b| within 1e-4 absolute below magnitude 1, 1e-4 relative above. */
export function close(expected: number, actual: number, tol = 1e-4): boolean {
  return Math.abs(expected - actual) <= tol * Math.max(1, Math.abs(expected));
}

/**
 * rewards/accuracies counts chosen reward > rejected reward. While the policy still equals the
 * reference (step 1 without an adapter) both rewards are float noise around 0 on TRL's side (two
 * forward passes) and exactly 0 on tsdpo's, so the count is noise: it is not compared on such lines.
 */
function tiedRewards(line: Record<string, number>, k: string): boolean {
  const p = k.startsWith('eval_') ? 'eval_' : '';
  if (k !== `${p}rewards/accuracies`) return false;
  return Math.abs(line[`${p}rewards/chosen`]) < 1e-5 && Math.abs(line[`${p}rewards/rejected`]) < 1e-5;
}

export interface Diff {
  /** Largest |difference| (relative above magnitude 1) per metric. */
  max: Record<string, number>;
  problems: string[];
}

/**
 * Compares TRL's log_history with tsdpo's metrics.jsonl line by line (train lines by step, eval
 * lines by step, the final summary line).
 */
export function compareHistories(trl: Record<string, number>[], ts: Record<string, number>[], tol = 1e-4): Diff {
  const problems: string[] = [];
  const max: Record<string, number> = {};
  if (trl.length === 1 && 'error' in trl[0]) return { max, problems: [`TRL failed: ${String(trl[0].error)}`] };
  if (ts.length === 1 && 'error' in ts[0]) return { max, problems: [`tsdpo failed: ${String(ts[0].error)}`] };
  const kind = (l: Record<string, number>): string =>
    'train_loss' in l ? 'summary' : Object.keys(l).some((k) => k.startsWith('eval_')) ? 'eval' : 'train';
  const key = (l: Record<string, number>): string => `${kind(l)}@${l.step}`;
  const ours = new Map(ts.map((l) => [key(l), l]));
  for (const line of trl) {
    const mine = ours.get(key(line));
    if (!mine) {
      problems.push(`tsdpo has no ${kind(line)} line at step ${line.step} (TRL: ${JSON.stringify(line)})`);
      continue;
    }
    for (const [k, v] of Object.entries(line)) {
      if (k in NOT_COMPARED) continue;
      const a = mine[k];
      if (typeof a !== 'number') {
        problems.push(
          `${kind(line)} step ${line.step}: TRL logs ${k}=${v}; tsdpo does not (add it, or list it in NOT_COMPARED with the reason)`,
        );
        continue;
      }
      if (tiedRewards(line, k)) continue;
      const d = Math.abs(v - a) / Math.max(1, Math.abs(v));
      max[k] = Math.max(max[k] ?? 0, d);
      const ok = EXACT.has(k) ? v === a || Math.abs(v - a) <= 1e-12 * Math.max(1, Math.abs(v)) : close(v, a, tol);
      if (!ok) problems.push(`${kind(line)} step ${line.step}: ${k} TRL ${v}, tsdpo ${a} (diff ${d.toExponential(2)})`);
    }
  }
  const trlKeys = new Set(trl.map(key));
  for (const l of ts)
    if (!trlKeys.has(key(l))) problems.push(`tsdpo logs a ${kind(l)} line at step ${l.step} that TRL does not`);
  return { max, problems };
}

/**
 * One test per case, `title: name`: the comparison `before` made between tsdpo's run and TRL's must
 * have no problems (TSDPO_REFERENCE_REPORT=1 prints each case's largest differences).
 */
export function parityTests(
  title: string,
  names: readonly string[],
  results: Map<string, Diff>,
  avail: ReturnType<typeof referenceAvailable>,
): void {
  for (const name of names) {
    test(`${title}: ${name}`, { skip: avail.ok ? false : avail.why }, () => {
      const r = results.get(name);
      assert.ok(r, 'the side-by-side runs did not finish');
      if (process.env.TSDPO_REFERENCE_REPORT) console.log(JSON.stringify({ case: name, max: r.max }));
      assert.deepEqual(r.problems, [], `tsdpo differs from TRL 1.13 (${name}):\n${r.problems.slice(0, 20).join('\n')}`);
    });
  }
}
