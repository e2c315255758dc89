// A run killed with SIGKILL mid-way and resumed with --resume logs the same losses as an
// uninterrupted run; an output folder holding a run is not overwritten without --overwrite.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tempRoot, tinyModel, tinyPreferences } from './tiny.js';

const BIN = fileURLToPath(new URL('../../../bin/tsdpo.js', import.meta.url));
let root = '',
  model = '',
  data = '';

before(async () => {
  await initEngine({ device: 'cpu' });
  root = tempRoot();
  model = await tinyModel(root, 3);
  data = tinyPreferences(root, 40);
});

const args = (out: string, extra: string[] = []): string[] => [
  BIN,
  'dpo',
  '--model',
  model,
  '--data',
  data,
  '--output',
  out,
  '--max_steps',
  '60',
  '--save_steps',
  '10',
  '--logging_steps',
  '1',
  '--per_device_train_batch_size',
  '4',
  '--learning_rate',
  '3e-3',
  '--device',
  'cpu',
  '--threads',
  '2',
  '--lr_scheduler_type',
  'cosine',
  '--warmup_steps',
  '5',
  ...extra,
];

test('SIGKILL mid-run, then --resume: the following losses equal an uninterrupted run', async () => {
  const full = join(root, 'full'),
    killed = join(root, 'killed');
  const ok = spawnSync(process.execPath, args(full), { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  // Start the second run and kill it as soon as its first checkpoint is complete.
  const child = spawn(process.execPath, args(killed), { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  while (!existsSync(join(killed, 'checkpoint-10', 'trainer_state.json'))) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(
    !existsSync(join(killed, 'checkpoint-60')),
    'the run was killed before finishing (make it longer if this fails)',
  );
  const resumed = spawnSync(process.execPath, args(killed, ['--resume']), { encoding: 'utf8' });
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming from .*checkpoint-\d+/);
  const a = readMetrics(full).filter((l) => 'loss' in l),
    b = readMetrics(killed).filter((l) => 'loss' in l);
  assert.equal(b.length, 60);
  for (let i = 0; i < 60; i++) {
    assert.equal(b[i].step, a[i].step);
    assert.equal(b[i].loss, a[i].loss, `loss at step ${a[i].step}: ${b[i].loss} vs uninterrupted ${a[i].loss}`);
    assert.equal(b[i].grad_norm, a[i].grad_norm, `grad_norm at step ${a[i].step}`);
  }
});

test('an output folder holding a run is refused without --overwrite, and replaced with it', () => {
  const out = join(root, 'again');
  const first = spawnSync(process.execPath, args(out, ['--max_steps', '2']), { encoding: 'utf8' });
  assert.equal(first.status, 0, first.stderr);
  const refused = spawnSync(process.execPath, args(out, ['--max_steps', '2']), { encoding: 'utf8' });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /already holds a training run.*--resume.*--overwrite/);
  const replaced = spawnSync(process.execPath, args(out, ['--max_steps', '2', '--overwrite']), { encoding: 'utf8' });
  assert.equal(replaced.status, 0, replaced.stderr);
});
