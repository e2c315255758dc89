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
import { initEngine } from '../../src/engine.js';
import { before } from 'node:test';

before(async () => {
  await initEngine({ device: 'cpu' });
});

export function dpoConfig(over: Partial<DpoConfig>): DpoConfig {
  return { ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }), device: 'cpu', ...over } as DpoConfig;
}

test('DPO end to end: ln 2 at step 1, loss falls, accuracy rises', async () => {
  const root = tempRoot();
  const model = await tinyModel(root);
  const data = tinyPreferences(root);
  const cfg = dpoConfig({
    model_name_or_path: model,
    dataset: data,
    output_dir: join(root, 'out'),
    learning_rate: 5e-3,
    max_steps: 30,
    per_device_train_batch_size: 4,
    logging_steps: 1,
    save_steps: 0,
    beta: 0.1,
    lr_scheduler_type: 'constant',
  });
  const r = await runDpo(cfg, { quiet: true, log: () => {} });
  assert.equal(r.steps, 30);
  const m = readMetrics(cfg.output_dir).filter((l) => 'loss' in l);
  assert.ok(Math.abs(m[0].loss - Math.LN2) < 1e-6, `step-1 loss ${m[0].loss} should be ln 2`);
  assert.equal(m[0]['rewards/margins'], 0);
  const first = m.slice(0, 5),
    last = m.slice(-5);
  const avg = (xs: Record<string, number>[], k: string): number => xs.reduce((a, x) => a + x[k], 0) / xs.length;
  assert.ok(avg(last, 'loss') < avg(first, 'loss') - 0.2, `loss ${avg(first, 'loss')} -> ${avg(last, 'loss')}`);
  assert.ok(avg(last, 'rewards/accuracies') > 0.9, `final accuracy ${avg(last, 'rewards/accuracies')}`);
  for (const k of [
    'rewards/chosen',
    'rewards/rejected',
    'rewards/margins',
    'logps/chosen',
    'logps/rejected',
    'logits/chosen',
    'logits/rejected',
    'grad_norm',
    'learning_rate',
    'epoch',
    'tokens_per_second',
  ]) {
    assert.ok(Number.isFinite(m[m.length - 1][k]), `metric ${k}`);
  }
  assert.ok(
    existsSync(join(cfg.output_dir, 'model.safetensors')) && existsSync(join(cfg.output_dir, 'tokenizer.json')),
  );
  assert.equal(loadModel(cfg.output_dir).family, 'gpt2');
});

test('precomputed reference log-probs: cached on disk, reused by the next run, same losses', async () => {
  const root = tempRoot();
  process.env.TSDPO_CACHE_DIR = join(root, 'cache');
  const model = await tinyModel(root, 1);
  const data = tinyPreferences(root, 12);
  const base = {
    model_name_or_path: model,
    dataset: data,
    learning_rate: 1e-3,
    max_steps: 4,
    per_device_train_batch_size: 4,
    logging_steps: 1,
    save_steps: 0,
  };
  const lines: string[] = [];
  await runDpo(dpoConfig({ ...base, output_dir: join(root, 'live') }), { quiet: true, log: () => {} });
  await runDpo(dpoConfig({ ...base, output_dir: join(root, 'pre1'), precompute_ref_log_probs: true }), {
    quiet: true,
    log: (l) => lines.push(l),
  });
  assert.ok(
    lines.some((l) => /cached in/.test(l)),
    'first run writes the cache',
  );
  lines.length = 0;
  await runDpo(dpoConfig({ ...base, output_dir: join(root, 'pre2'), precompute_ref_log_probs: true }), {
    quiet: true,
    log: (l) => lines.push(l),
  });
  assert.ok(
    lines.some((l) => /reusing/.test(l)),
    'second run reuses the cache',
  );
  const steps = (dir: string) => readMetrics(dir).filter((l) => 'loss' in l);
  const live = steps(join(root, 'live')),
    pre = steps(join(root, 'pre2'));
  // Linear decay over 4 steps, logged as transformers 5's Trainer does: the rate each step used
  // (test/reference compares it with TRL).
  assert.deepEqual(
    live.map((l) => l.learning_rate),
    [1e-3, 7.5e-4, 5e-4, 2.5e-4],
  );
  live.forEach((l, i) =>
    assert.ok(Math.abs(l.loss - pre[i].loss) < 1e-6, `step ${l.step}: ${l.loss} vs ${pre[i].loss}`),
  );
  delete process.env.TSDPO_CACHE_DIR;
});

test('LoRA DPO: the reference is the base model (adapter off); the output is a PEFT adapter', async () => {
  const root = tempRoot();
  const model = await tinyModel(root, 2);
  const data = tinyPreferences(root, 16);
  const out = join(root, 'out');
  await runDpo(
    dpoConfig({
      model_name_or_path: model,
      dataset: data,
      output_dir: out,
      use_peft: true,
      lora_r: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      lora_target_modules: ['c_attn', 'c_fc'],
      learning_rate: 1e-2,
      max_steps: 20,
      per_device_train_batch_size: 4,
      logging_steps: 1,
      save_steps: 0,
    }),
    { quiet: true, log: () => {} },
  );
  const m = readMetrics(out).filter((l) => 'loss' in l);
  assert.ok(Math.abs(m[0].loss - Math.LN2) < 1e-6, 'adapter starts at the base model: ln 2');
  assert.ok(m[m.length - 1].loss < m[0].loss - 0.1, `loss ${m[0].loss} -> ${m[m.length - 1].loss}`);
  assert.ok(existsSync(join(out, 'adapter_config.json')) && existsSync(join(out, 'adapter_model.safetensors')));
});

test('eval metrics with the eval_ prefix, every eval_steps', async () => {
  const root = tempRoot();
  const model = await tinyModel(root, 4);
  const data = tinyPreferences(root, 12);
  const out = join(root, 'out');
  await runDpo(
    dpoConfig({
      model_name_or_path: model,
      dataset: data,
      eval_dataset: data,
      output_dir: out,
      max_steps: 4,
      per_device_train_batch_size: 4,
      logging_steps: 2,
      eval_steps: 2,
      save_steps: 0,
    }),
    { quiet: true, log: () => {} },
  );
  const evals = readMetrics(out).filter((l) => 'eval_loss' in l);
  assert.deepEqual(
    evals.map((l) => l.step),
    [2, 4],
  );
  for (const k of ['eval_rewards/accuracies', 'eval_rewards/margins', 'eval_logps/chosen'])
    assert.ok(Number.isFinite(evals[0][k]), k);
});

test('a non-finite loss stops the run with a message and keeps the last good checkpoint', async () => {
  const root = tempRoot();
  const model = await tinyModel(root, 5);
  const data = tinyPreferences(root, 8);
  const out = join(root, 'out');
  const lines: string[] = [];
  const r = await runDpo(
    dpoConfig({
      model_name_or_path: model,
      dataset: data,
      output_dir: out,
      max_steps: 40,
      per_device_train_batch_size: 4,
      logging_steps: 1,
      save_steps: 1,
      learning_rate: 1e30,
      optim: 'sgd',
      max_grad_norm: 0,
      lr_scheduler_type: 'constant',
    }),
    { quiet: true, log: (l) => lines.push(l) },
  );
  assert.ok(r.stopped && /stopped/.test(r.stopped), 'run stopped');
  assert.ok(r.steps < 40);
  assert.ok(
    lines.some((l) => /(loss|gradient norm) is (NaN|Infinity|-Infinity)/.test(l)),
    lines.join('\n'),
  );
  const { latestCheckpoint } = await import('../../src/train/checkpoint.js');
  const ck = latestCheckpoint(out);
  assert.ok(ck && ck.step <= r.steps, 'a checkpoint from before the failure is kept');
  assert.ok(!existsSync(join(out, 'model.safetensors')), 'no final model is written from a diverged run');
});

test('share_prompt and completion_only_head give the same losses as the plain computation', async () => {
  const root = tempRoot();
  const model = await tinyModel(root, 6);
  const data = tinyPreferences(root, 12);
  const base = {
    model_name_or_path: model,
    dataset: data,
    learning_rate: 1e-3,
    max_steps: 4,
    per_device_train_batch_size: 4,
    logging_steps: 1,
    save_steps: 0,
  };
  await runDpo(dpoConfig({ ...base, output_dir: join(root, 'plain'), completion_only_head: false }), {
    quiet: true,
    log: () => {},
  });
  await runDpo(dpoConfig({ ...base, output_dir: join(root, 'shared'), share_prompt: true }), {
    quiet: true,
    log: () => {},
  });
  const steps = (dir: string) => readMetrics(dir).filter((l) => 'loss' in l);
  const a = steps(join(root, 'plain')),
    b = steps(join(root, 'shared'));
  assert.equal(a.length, 4);
  a.forEach((l, i) => {
    assert.ok(Math.abs(l.loss - b[i].loss) < 1e-5, `step ${l.step}: loss ${l.loss} vs ${b[i].loss}`);
    for (const k of ['logits/chosen', 'logits/rejected', 'entropy', 'mean_token_accuracy']) {
      assert.ok(Math.abs(l[k] - b[i][k]) < 1e-4, `step ${l.step}: ${k} ${l[k]} vs ${b[i][k]}`);
    }
  });
});

test('options TRL 1.13 dropped or changed are accepted with a one-line notice naming the 1.13 way', async () => {
  const { dpoNotices, lossTerms } = await import('../../src/train/dpo.js');
  const cfg = dpoConfig({
    rpo_alpha: 0.5,
    max_prompt_length: 64,
    loss_type: ['sigmoid', 'simpo'],
    label_smoothing: 0.1,
  });
  const n = dpoNotices(cfg);
  assert.ok(
    n.some((l) => /rpo_alpha .*loss_type sigmoid,simpo,sft with loss_weights 1,1,0.5/.test(l)),
    n.join('\n'),
  );
  assert.ok(n.some((l) => /simpo is tsdpo's own.*CPOTrainer/.test(l)));
  assert.ok(n.some((l) => /max_prompt_length is tsdpo's own/.test(l)));
  assert.ok(n.some((l) => /label_smoothing 0.1 has no effect/.test(l)));
  assert.deepEqual(lossTerms(cfg), [
    ['sigmoid', 1],
    ['simpo', 1],
    ['sft', 0.5],
  ]);
  assert.deepEqual(dpoNotices(dpoConfig({})), [], 'TRL 1.13 defaults give no notice');
  assert.equal(dpoConfig({}).truncation_mode, 'keep_start');
  assert.equal(dpoConfig({}).max_prompt_length, 0);
});

test('combinations TRL 1.13 refuses are refused, naming the way out', async () => {
  const { checkDpoConfig } = await import('../../src/train/dpo.js');
  assert.throws(
    () => checkDpoConfig(dpoConfig({ f_divergence_type: 'js_divergence', loss_type: ['nca_pair'] })),
    /nca_pair has no f-divergence form/,
  );
  assert.throws(() => checkDpoConfig(dpoConfig({ loss_type: ['exo_pair'] })), /label_smoothing > 0/);
  assert.throws(() => checkDpoConfig(dpoConfig({ use_weighting: true, loss_type: ['aot'] })), /sort the pairs/);
  assert.throws(() => checkDpoConfig(dpoConfig({ sync_ref_model: true, use_peft: true })), /LoRA/);
  assert.throws(() => checkDpoConfig(dpoConfig({ ld_alpha: 2 })), /\[0, 1\]/);
  checkDpoConfig(dpoConfig({ f_divergence_type: 'js_divergence', loss_type: ['hinge', 'sft'] }));
});
