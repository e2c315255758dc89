// `tsdpo ppo` from the command line (bin/tsdpo.js in a child process): --help, the pad == EOS
// error, and an end-to-end run on the demo model with the sentiment reward (PPO-GT: the critic
// starts from the policy's backbone with a zero value head) in which the mean score rises.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSafetensorsHeader } from '../../src/io/safetensors.js';
import { PPO_SPECS } from '../../src/rl/config.js';
import { imdbPrompts } from '../../src/demo/prompts.js';
import { DEMO_MODEL, runCli } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'tsdpo-ppo-cli-'));
const LINES = [
  'The movie was',
  'I thought the film',
  'This story is',
  'The actors were',
  'Honestly, the plot',
  'The ending felt',
  'My friend said the movie',
  'The soundtrack was',
];
const prompts = join(root, 'prompts.txt');
writeFileSync(prompts, [...LINES, ...LINES].join('\n') + '\n');

const METRICS = [
  'objective/kl',
  'objective/entropy',
  'objective/non_score_reward',
  'objective/rlhf_reward',
  'objective/scores',
  'policy/approxkl_avg',
  'policy/clipfrac_avg',
  'loss/policy_avg',
  'loss/value_avg',
  'val/clipfrac_avg',
  'policy/entropy_avg',
  'val/ratio',
  'val/ratio_var',
  'val/num_eos_tokens',
  'eps',
  'lr',
  'episode',
];

test('ppo --help lists every option with its default', () => {
  const r = runCli(['ppo', '--help']);
  assert.equal(r.status, 0, r.stderr);
  for (const key of Object.keys(PPO_SPECS))
    assert.match(r.stdout, new RegExp(`--${key}[^\\n]*\\n?[^\\n]*default`), `--help lacks --${key} with its default`);
});

test('ppo: a tokenizer whose pad token is EOS is an error naming --pad_token_id', () => {
  const r = runCli([
    'ppo',
    '--model',
    DEMO_MODEL,
    '--data',
    prompts,
    '--reward',
    'sentiment',
    '--output',
    join(root, 'bad'),
    '--device',
    'cpu',
  ]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /pad token is EOS \(id 2047\)[^]*--pad_token_id/);
});

test(
  'ppo on the demo model with --reward sentiment: the mean score rises within 24 updates',
  { timeout: 180_000 },
  () => {
    const out = join(root, 'run');
    const r = runCli([
      'ppo',
      '--model',
      DEMO_MODEL,
      '--data',
      prompts,
      '--reward',
      'sentiment',
      '--output',
      out,
      '--pad_token_id',
      '2048',
      '--response_length',
      '10',
      '--per_device_train_batch_size',
      '16',
      '--num_train_epochs',
      '24',
      '--learning_rate',
      '3e-4',
      '--temperature',
      '1',
      '--seed',
      '1',
      '--save_value',
      '--device',
      'cpu',
    ]);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    assert.equal(lines.length, 24);
    for (const k of METRICS) assert.ok(k in lines[0], `metrics.jsonl lacks ${k}`);
    const scores = lines.map((l) => l['objective/scores']);
    const mean = (x: number[]): number => x.reduce((a, b) => a + b, 0) / x.length;
    const first = mean(scores.slice(0, 5)),
      last = mean(scores.slice(-5));
    assert.ok(
      last > first + 0.04,
      `the mean sentiment score should rise: first 5 updates ${first.toFixed(3)}, ` +
        `last 5 ${last.toFixed(3)} (${scores.map((s) => s.toFixed(3)).join(' ')})`,
    );
    assert.ok(
      lines[0]['objective/kl'] === 0 && lines[23]['objective/kl'] > 0,
      'KL is 0 before the first update and positive after',
    );
    assert.ok(
      existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'tokenizer.json')),
      'the policy is saved with its tokenizer',
    );
    const value = readSafetensorsHeader(join(out, 'value_model', 'model.safetensors'));
    assert.deepEqual(value.entries.find((e) => e.name === 'score.weight')?.shape, [1, 192]);
    const cfg = JSON.parse(readFileSync(join(out, 'value_model', 'config.json'), 'utf8'));
    assert.deepEqual(cfg.architectures, ['GPT2ForSequenceClassification']);
  },
);

test(
  'ppo with a reward model trained by tsdpo reward on demo-style pairs: its mean score rises within 24 updates',
  { timeout: 240_000 },
  () => {
    // Pairs as the demo makes them: IMDb review prefixes, the completion the sentiment reward prefers as chosen.
    const GOOD = [
      ' was a wonderful, moving film.',
      ' is great fun and the cast is superb.',
      ' made me laugh, a delight.',
      ' is brilliant and beautiful.',
    ];
    const BAD = [
      ' was a boring, awful mess.',
      ' is dull and the acting is terrible.',
      ' made me angry, a waste.',
      ' is stupid and ugly.',
    ];
    const rows = imdbPrompts({ split: 'train' })
      .slice(0, 32)
      .map((p, i) => ({ prompt: p.prompt, chosen: GOOD[i % 4], rejected: BAD[(i + 1) % 4] }));
    const pairs = join(root, 'pairs.jsonl'),
      rm = join(root, 'rm'),
      out = join(root, 'run-rm');
    writeFileSync(pairs, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const t = runCli([
      'reward',
      '--model',
      DEMO_MODEL,
      '--data',
      pairs,
      '--output',
      rm,
      '--max_steps',
      '12',
      '--batch_size',
      '8',
      '--learning_rate',
      '1e-3',
      '--lr_scheduler_type',
      'constant',
      '--device',
      'cpu',
    ]);
    assert.equal(t.status, 0, t.stderr.slice(-2000));
    const r = runCli([
      'ppo',
      '--model',
      DEMO_MODEL,
      '--data',
      prompts,
      '--reward',
      rm,
      '--output',
      out,
      '--pad_token_id',
      '2048',
      '--response_length',
      '10',
      '--per_device_train_batch_size',
      '16',
      '--num_train_epochs',
      '24',
      '--learning_rate',
      '3e-4',
      '--temperature',
      '1',
      '--seed',
      '1',
      '--device',
      'cpu',
    ]);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const scores = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as Record<string, number>)['objective/scores']);
    assert.equal(scores.length, 24);
    const mean = (x: number[]): number => x.reduce((a, b) => a + b, 0) / x.length;
    const first = mean(scores.slice(0, 5)),
      last = mean(scores.slice(-5));
    assert.ok(
      last > first + 0.3,
      `the reward model's mean score should rise: first 5 updates ${first.toFixed(3)}, last 5 ${last.toFixed(3)}`,
    );

    // A reward model with another vocabulary cannot score the policy's ids: an error says so.
    const other = join(root, 'rm-other');
    cpSync(rm, other, { recursive: true });
    const tj = JSON.parse(readFileSync(join(other, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number> };
    };
    const [a, b] = Object.keys(tj.model.vocab).slice(300, 302);
    [tj.model.vocab[a], tj.model.vocab[b]] = [tj.model.vocab[b], tj.model.vocab[a]];
    writeFileSync(join(other, 'tokenizer.json'), JSON.stringify(tj));
    const bad = runCli([
      'ppo',
      '--model',
      DEMO_MODEL,
      '--data',
      prompts,
      '--reward',
      other,
      '--output',
      join(root, 'run-other'),
      '--pad_token_id',
      '2048',
      '--device',
      'cpu',
    ]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /rm-other: the reward model's tokenizer differs from the policy's/);
  },
);
