// End-to-end DPO on a tiny model and dataset: the loss starts at ln 2 (policy == reference),
// falls, and the implicit-reward accuracy rises; the output folder loads again.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultsOf, COMMON_OPTIONS, DPO_OPTIONS, type DpoConfig } from '../../src/train/config.js';
import { runDpo } from '../../src/train/run.js';
import { readMetrics } from '../../src/train/trainer.js';
import { loadModel } from '../../src/models/load.js';
import { tempRoot, tinyModel, tinyPreferences } from './tiny.js';

export function dpoConfig(over: Partial<DpoConfig>): DpoConfig {
  return { ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }), device: 'cpu', ...over } as DpoConfig;
}

test('DPO end to end: ln 2 at step 1, loss falls, accuracy rises', async () => {
  const root = tempRoot();
  const model = await tinyModel(root);
  const data = tinyPreferences(root);
  const cfg = dpoConfig({
    model_name_or_path: model, dataset: data, output_dir: join(root, 'out'), learning_rate: 5e-3, max_steps: 30,
    per_device_train_batch_size: 4, logging_steps: 1, save_steps: 0, beta: 0.1, lr_scheduler_type: 'constant',
  });
  const r = await runDpo(cfg, { quiet: true, log: () => {} });
  assert.equal(r.steps, 30);
  const m = readMetrics(cfg.output_dir).filter((l) => 'loss' in l);
  assert.ok(Math.abs(m[0].loss - Math.LN2) < 1e-6, `step-1 loss ${m[0].loss} should be ln 2`);
  assert.equal(m[0]['rewards/margins'], 0);
  const first = m.slice(0, 5), last = m.slice(-5);
  const avg = (xs: Record<string, number>[], k: string): number => xs.reduce((a, x) => a + x[k], 0) / xs.length;
  assert.ok(avg(last, 'loss') < avg(first, 'loss') - 0.2, `loss ${avg(first, 'loss')} -> ${avg(last, 'loss')}`);
  assert.ok(avg(last, 'rewards/accuracies') > 0.9, `final accuracy ${avg(last, 'rewards/accuracies')}`);
  for (const k of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'logps/chosen', 'logps/rejected', 'logits/chosen', 'logits/rejected', 'grad_norm', 'learning_rate', 'epoch', 'tokens_per_second']) {
    assert.ok(Number.isFinite(m[m.length - 1][k]), `metric ${k}`);
  }
  assert.ok(existsSync(join(cfg.output_dir, 'model.safetensors')) && existsSync(join(cfg.output_dir, 'tokenizer.json')));
  assert.equal(loadModel(cfg.output_dir).family, 'gpt2');
});
