// tsdpo dpo vs TRL 1.13's DPOTrainer, side by side: each case trains one config on both sides and
// compares every metric TRL logs at every step (see harness.ts for the tolerances and the short
// list of metrics not compared). The TRL runs of all cases share one Python process.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { COMMON_OPTIONS, defaultsOf, DPO_OPTIONS, type DpoConfig } from '../../src/train/config.js';
import { runDpo } from '../../src/train/run.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tempDir } from '../helpers/assets.js';
import { compareHistories, preferenceRows, referenceAvailable, runTrl, samplerOrder, tinyFamily, writeRows, type Diff, type Job } from './harness.js';

const avail = referenceAvailable();
const root = tempDir('tsdpo-ref-dpo-');

interface Case {
  name: string;
  /** Options on top of BASE (tsdpo's names; the runner maps them to TRL's). */
  cfg: Record<string, unknown>;
  /** Relative / absolute tolerance when 1e-4 is not the right scale (with the reason). */
  tol?: number;
}

const model = (family: string, o: Parameters<typeof tinyFamily>[2] = {}): string => tinyFamily(root, family, o);
const data = (name: string, n: number, offset = 0): string => writeRows(root, name, preferenceRows(n, offset));

/** Every case starts from this: 4 steps of 4 pairs, logged each step, a rate large enough to move the tiny models. */
const BASE = () => ({
  model_name_or_path: model('llama'), dataset: data('train8.jsonl', 8), learning_rate: 1e-3, max_steps: 4,
  per_device_train_batch_size: 4, logging_steps: 1, lr_scheduler_type: 'linear', seed: 42, max_grad_norm: 1,
});

const CASES: Case[] = [
  { name: 'sigmoid (llama)', cfg: {} },
  { name: 'full batch, constant rate (gpt2)', cfg: { model_name_or_path: model('gpt2'), per_device_train_batch_size: 8, lr_scheduler_type: 'constant' } },
];

const results = new Map<string, Diff>();

before(async () => {
  if (!avail.ok) return;
  await initEngine({ device: 'cpu' });
  const jobs: Job[] = [];
  const configs: DpoConfig[] = [];
  CASES.forEach((c, i) => {
    const cfg = { ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }), device: 'cpu', save_steps: 0, ...BASE(), ...c.cfg, output_dir: join(root, `ts-${i}`) } as DpoConfig;
    configs.push(cfg);
    const size = preferenceRowsCount(cfg.dataset);
    const given: Record<string, unknown> = { ...BASE(), ...c.cfg };
    jobs.push({ config: given, out: join(root, `trl-${i}.jsonl`), sampler_order: samplerOrder(cfg, size) });
  });
  const trl = runTrl(root, 'dpo', jobs); // runs while tsdpo trains
  const ts: Record<string, number>[][] = [];
  for (const cfg of configs) {
    await runDpo(cfg, { quiet: true, log: () => {} });
    ts.push(readMetrics(cfg.output_dir));
  }
  const ref = await trl;
  CASES.forEach((c, i) => results.set(c.name, compareHistories(ref[i], ts[i], c.tol)));
}, { timeout: 600_000 });

/** Rows in a JSON-lines file. */
function preferenceRowsCount(file: string): number {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).length;
}

for (const c of CASES) {
  test(`TRL 1.13 parity: ${c.name}`, { skip: avail.ok ? false : avail.why }, () => {
    const r = results.get(c.name);
    assert.ok(r, 'the side-by-side runs did not finish');
    if (process.env.TSDPO_REFERENCE_REPORT) console.log(JSON.stringify({ case: c.name, max: r.max }));
    assert.deepEqual(r.problems, [], `tsdpo differs from TRL 1.13 (${c.name}):\n${r.problems.slice(0, 20).join('\n')}`);
  });
}
