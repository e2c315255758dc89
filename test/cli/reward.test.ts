// `tsdpo reward` from the command line (bin/tsdpo.js in a child process) on the demo model, with
// pairs in the demo's format (IMDb review prefixes; the chosen completion the one the demo's
// sentiment reward prefers): a few steps move loss down and accuracy up, the saved folder is a
// GPT2ForSequenceClassification that `tsdpo eval --reward` judges with, and bad input stops with
// errors that name the file, line, field or option.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { imdbPrompts } from '../../src/demo/prompts.js';
import { reward as sentiment } from '../../src/eval/reward.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { tempDir } from '../helpers/assets.js';
import { DEMO_MODEL, runCli } from '../helpers/cli.js';

let root = '';
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
const jsonl = (name: string, rows: unknown[]): string => {
  const file = join(root, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
};
const metrics = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);

before(() => {
  root = tempDir('tsdpo-cli-reward-');
});

test(
  'tsdpo reward on the demo model: loss falls, accuracy ' + 'rises; the folder loads as a reward model in tsdpo eval',
  () => {
    const rows = imdbPrompts({ split: 'train' })
      .slice(0, 32)
      .map((p, i) => {
        const [chosen, rejected] = [GOOD[i % 4], BAD[(i + 1) % 4]];
        return {
          prompt: p.prompt,
          chosen,
          rejected,
          chosen_reward: sentiment(chosen),
          rejected_reward: sentiment(rejected),
        };
      });
    assert.ok(
      rows.every((r) => r.chosen_reward > r.rejected_reward),
      'the demo reward prefers every chosen completion',
    );
    const data = jsonl('pairs.jsonl', rows),
      out = join(root, 'rm');
    const r = runCli([
      'reward',
      '--model',
      DEMO_MODEL,
      '--data',
      data,
      '--output',
      out,
      '--max_steps',
      '12',
      '--batch_size',
      '8',
      '--learning_rate',
      '1e-3',
      '--logging_steps',
      '1',
      '--lr_scheduler_type',
      'constant',
      '--device',
      'cpu',
      '--threads',
      '1',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /new score head/);
    const m = metrics(out).filter((l) => 'loss' in l);
    assert.equal(m.length, 12);
    for (const k of [
      'loss',
      'accuracy',
      'margin',
      'min_reward',
      'mean_reward',
      'max_reward',
      'num_tokens',
      'grad_norm',
      'learning_rate',
      'epoch',
    ])
      assert.ok(k in m[0], `metrics.jsonl lacks ${k}`);
    const mean = (ls: Record<string, number>[], k: string) => ls.reduce((a, l) => a + l[k], 0) / ls.length;
    const [first, last] = [m.slice(0, 3), m.slice(-3)];
    assert.ok(mean(last, 'loss') < mean(first, 'loss') - 0.05, `loss ${mean(first, 'loss')} -> ${mean(last, 'loss')}`);
    assert.ok(
      mean(last, 'accuracy') > mean(first, 'accuracy'),
      `accuracy ${mean(first, 'accuracy')} -> ${mean(last, 'accuracy')}`,
    );
    assert.ok(
      mean(last, 'margin') > mean(first, 'margin'),
      `margin ${mean(first, 'margin')} -> ${mean(last, 'margin')}`,
    );

    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config.architectures, ['GPT2ForSequenceClassification']);
    assert.deepEqual(config.id2label, { 0: 'LABEL_0' });
    assert.equal(config.pad_token_id, 2047); // the demo tokenizer's pad token (<|endoftext|>)
    const names = [...readSafetensors(join(out, 'model.safetensors')).tensors.keys()];
    assert.ok(names.includes('score.weight') && !names.includes('lm_head.weight'), names.join(', '));
    assert.ok(existsSync(join(out, 'tokenizer.json')));

    const prompts = join(root, 'prompts.txt');
    writeFileSync(prompts, 'This movie was\nThe acting\n');
    const e = runCli([
      'eval',
      '--model',
      DEMO_MODEL,
      '--reference',
      DEMO_MODEL,
      '--prompts',
      prompts,
      '--reward',
      out,
      '--samples',
      '2',
      '--max_new_tokens',
      '6',
      '--json',
      '--device',
      'cpu',
    ]);
    assert.equal(e.status, 0, e.stderr);
    const res = JSON.parse(e.stdout.trim().split('\n')[0]) as Record<string, number>;
    // same model, same samples
    assert.ok(Number.isFinite(res.policy_reward) && res.policy_reward === res.reference_reward, e.stdout);
  },
);

test('tsdpo reward: bad input stops with an error naming the file, line, field or option', () => {
  const run = (args: string[]) =>
    runCli([
      'reward',
      '--model',
      DEMO_MODEL,
      '--output',
      join(root, `bad-${args.length}-${Math.random()}`),
      '--max_steps',
      '1',
      '--device',
      'cpu',
      ...args,
    ]);
  const margin = jsonl('margin.jsonl', [
    { prompt: 'A', chosen: ' good', rejected: ' bad', margin: 1 },
    { prompt: 'B', chosen: ' good', rejected: ' bad' },
  ]);
  assert.match(
    run(['--data', margin]).stderr,
    /margin\.jsonl line 2: field 'margin': is missing; expected a finite number/,
  );
  const missing = jsonl('missing.jsonl', [{ prompt: 'A', chosen: ' good' }]);
  assert.match(run(['--data', missing]).stderr, /missing\.jsonl line 1: field 'rejected': is missing/);
  const ok = jsonl('ok.jsonl', [{ prompt: 'A', chosen: ' good', rejected: ' bad' }]);
  assert.match(run(['--data', ok, '--max_length', '2']).stderr, /no training pairs left/);
  assert.match(
    run(['--data', ok, '--center_rewards_coefficient', '-1']).stderr,
    /--center_rewards_coefficient is -1; expected >= 0/,
  );
  assert.match(run(['--data', ok, '--truncation_mode', 'keep_end']).stderr, /unknown option '--truncation_mode'/);
  const chat = jsonl('chat.jsonl', [
    {
      chosen: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'good' },
      ],
      rejected: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'bad' },
      ],
    },
  ]);
  assert.match(run(['--data', chat]).stderr, /chat\.jsonl line 1 is conversational .* has no chat template/);
  const help = runCli(['reward', '--help']).stdout.replace(/\s+/g, ' ');
  assert.match(help, /Bradley-Terry/);
  assert.match(help, /--center_rewards_coefficient/);
  assert.match(help, /modules_to_save/);
});
