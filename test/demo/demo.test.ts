// End to end: the demo pipeline with tiny settings on the committed checkpoint (sampling, pairs,
// Preferred-FT, DPO, Unlikelihood, reward model, PPO, PPO-GT, best-of-N, win rates, report): DPO must
// raise the mean reward above the starting model's, and a second run with the same seed gives the same numbers.
// Also: the committed checkpoint loads and matches the `tsdpo pretrain` defaults it records.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { runDemo, summaryJson } from '../../src/demo/demo.js';
import { DEMO_OPTIONS, defaultDemoModel } from '../../src/demo/options.js';
import { PRETRAIN_OPTIONS, blockBatch, packBlocks, permutation, tokenStream } from '../../src/demo/pretrain.js';
import { initEngine } from '../../src/engine.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { defaultsOf } from '../../src/train/config.js';
import { ByteLevelBpe } from '../../src/tokenizer/bpe.js';
import { fromTokenizerJson } from '../../src/tokenizer/hf-json.js';
import { tempRoot } from '../train/tiny.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

test('pretraining data: documents joined by EOS, blocks of T + 1 tokens with targets shifted by one', () => {
  const dir = defaultDemoModel();
  const enc = new ByteLevelBpe(fromTokenizerJson(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'))));
  const eos = enc.specialId('<|endoftext|>');
  const a = enc.encode('Great film.'),
    b = enc.encode('Bad plot.');
  const stream = tokenStream(['Great film.', 'Bad plot.'], enc, eos);
  assert.deepEqual([...stream], [...a, eos, ...b, eos]);
  const blocks = packBlocks(
    Int32Array.from({ length: 10 }, (_, i) => i),
    3,
  );
  assert.equal(blocks.count, 3); // (10 - 1) / 3: every block has its next token
  const { ids, targets } = blockBatch(blocks, [2, 0]);
  assert.deepEqual([...ids], [6, 7, 8, 0, 1, 2]);
  assert.deepEqual([...targets], [7, 8, 9, 1, 2, 3]);
  assert.throws(() => blockBatch(blocks, [3]), /out of range/);
  const p = permutation(100, 5);
  assert.deepEqual(
    [...p].sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.deepEqual([...permutation(100, 5)], [...p], 'same seed, same order');
});

test('committed checkpoint: a GPT-2 folder with its tokenizer, made by the recorded `tsdpo pretrain` settings', () => {
  const dir = defaultDemoModel();
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'pretrain.json'])
    assert.ok(existsSync(join(dir, f)), f);
  const m = loadModel(dir);
  const tok = loadTokenizer(dir);
  assert.equal(m.family, 'gpt2');
  assert.equal(m.vocabSize, tok.vocabSize);
  assert.equal(tok.eosToken, '<|endoftext|>');
  const rec = JSON.parse(readFileSync(join(dir, 'pretrain.json'), 'utf8'));
  const defaults = defaultsOf(PRETRAIN_OPTIONS) as Record<string, unknown>;
  for (const [k, v] of Object.entries(rec.settings))
    assert.deepEqual(v, defaults[k], `pretrain.json setting ${k} is the default of tsdpo pretrain`);
  assert.equal(m.config.n_embd, defaults.n_embd);
  assert.equal(m.config.n_layer, defaults.n_layer);
  assert.ok(rec.result.heldOut.loss < 5, `held-out loss ${rec.result.heldOut.loss}`);
  for (const t of m.params.values()) t.dispose();
});

test(
  'demo end to end (tiny settings): pairs, baselines, DPO raises the ' +
    'reward and wins; every method of Fig. 2, deterministic for a seed',
  async () => {
    const root = tempRoot();
    const cfg = {
      ...defaultsOf(DEMO_OPTIONS),
      output: join(root, 'a'),
      quiet: true,
      train_prompts: 160,
      samples_per_prompt: 4,
      max_new_tokens: 12,
      eval_prompts: 16,
      eval_samples: 4,
      ref_samples: 4,
      best_of: ['2'],
      betas: ['0.1'],
      steps: 12,
      batch_size: 12,
      checkpoints: 2,
      learning_rate: 5e-4,
      unlikelihood_alphas: ['0.1'],
      rm_epochs: 0.5,
      rm_prompts: 0,
      ppo_kl_coefs: ['0.05'],
      ppo_updates: 2,
      ppo_batch: 8,
      temperatures: ['0.5', '1'],
    };
    const r = await runDemo(cfg, { log: () => {} });
    const out = cfg.output;
    const start = r.rows.find((x) => x.kind === 'start')!;
    const dpo = r.rows.find((x) => x.kind === 'dpo')!;
    assert.ok(r.pairs.count >= cfg.batch_size && r.pairs.count + r.pairs.skippedTies === cfg.train_prompts);
    assert.ok(r.pairs.meanChosen > r.pairs.meanRejected);
    assert.ok(dpo.reward > start.reward, `DPO reward ${dpo.reward} should beat the starting model's ${start.reward}`);
    assert.ok(dpo.kl > 0, `KL ${dpo.kl}`);
    // Win rates against the starting model's samples: 1/2 for itself; DPO and best-of-2 above it.
    assert.equal(start.winRate, 0.5);
    assert.ok(dpo.winRate > 0.5, `DPO win rate ${dpo.winRate}`);
    assert.ok(r.rows.find((x) => x.kind === 'best-of-n')!.winRate > 0.5);
    assert.deepEqual(
      r.rows.map((x) => x.kind),
      ['start', 'best-of-n', 'preferred-ft', 'dpo', 'unlikelihood', 'ppo', 'ppo-gt'],
    );
    for (const f of [
      'report.html',
      'frontier.svg',
      'winrate-temperature.svg',
      'winrate-training.svg',
      'summary.json',
      'pairs.jsonl',
      'runs/dpo-beta-0.1/metrics.jsonl',
      'runs/ppo-kl-0.05/metrics.jsonl',
      'reward-model/config.json',
    ])
      assert.ok(existsSync(join(out, f)), f);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    assert.deepEqual(
      summary.runs.map((x: { name: string }) => x.name),
      [
        'starting model (SFT)',
        'best-of-2',
        'Preferred-FT',
        'DPO beta=0.1',
        'Unlikelihood alpha=0.1',
        'PPO kl_coef=0.05',
        'PPO-GT kl_coef=0.05',
      ],
    );
    for (const x of summary.runs)
      for (const k of ['name', 'beta', 'reward', 'kl']) assert.ok(k in x, `${x.name}: ${k}`);
    assert.equal(typeof summary.runs[5].rm_score, 'number', 'PPO reports its reward model score');
    // Each run is evaluated at the same number of checkpoints, on the same prompts.
    for (const run of r.runs) assert.equal(run.points.length, cfg.checkpoints, run.name);
    assert.ok(summary.frontier.ppo && summary.frontier.ppo_gt);
    const rm = summary.reward_model;
    assert.ok(
      rm.ground_truth_accuracy >= 0 &&
        rm.ground_truth_accuracy <= 1 &&
        rm.ground_truth_pairs > 0 &&
        rm.train_pairs > r.pairs.count,
    );
    const w = summary.win_rates_vs_chosen;
    assert.deepEqual(w.temperatures, [0.5, 1]);
    assert.deepEqual(
      w.by_temperature.map((x: { name: string }) => x.name),
      ['starting model (SFT)', 'Preferred-FT', 'DPO beta=0.1', 'PPO kl_coef=0.05'],
    );
    for (const x of w.by_temperature) assert.equal(x.win_rate.length, 2);
    assert.deepEqual(
      w.over_training.points.map((p: { step: number }) => p.step),
      [0, 6, 12],
    );
    const pairs = readFileSync(join(out, 'pairs.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(pairs.length, r.pairs.count);
    for (const p of pairs) assert.ok(p.chosen_reward > p.rejected_reward, 'no tied pair');
    // The same seed gives the same numbers.
    const again = await runDemo({ ...cfg, output: join(root, 'b') }, { log: () => {} });
    const numbers = (x: Record<string, unknown>) => JSON.stringify({ ...x, seconds: 0, phase_seconds: 0 });
    assert.equal(numbers(summaryJson(again)), numbers(summary));
  },
);
