// `tsdpo grpo` / `tsdpo rloo` from the command line (bin/tsdpo.js in a child process) on the demo
// model: the sentiment reward rises within a few dozen GRPO and RLOO steps, and bad
// input (batch sizes that split groups, reward modules that throw or return bad values) gets an
// error naming what to change.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { imdbPrompts } from '../../src/demo/prompts.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tempDir } from '../helpers/assets.js';
import { DEMO_MODEL, runCli } from '../helpers/cli.js';

const root = tempDir('tsdpo-cli-rl-');
const prompts = join(root, 'prompts.jsonl');
writeFileSync(
  prompts,
  imdbPrompts({ split: 'train' })
    .slice(0, 16)
    .map((p) => JSON.stringify({ prompt: p.prompt }))
    .join('\n') + '\n',
);
const FAST = [
  '--model',
  DEMO_MODEL,
  '--data',
  prompts,
  '--threads',
  '1',
  '--device',
  'cpu',
  '--max_completion_length',
  '12',
];

test('tsdpo grpo: the mean sentiment reward rises within 24 steps on the demo model', () => {
  const out = join(root, 'grpo');
  const r = runCli([
    'grpo',
    ...FAST,
    '--output',
    out,
    '--max_steps',
    '24',
    '--per_device_train_batch_size',
    '16',
    '--num_generations',
    '8',
    '--learning_rate',
    '2e-3',
    '--lr_scheduler_type',
    'constant',
    '--loss_type',
    'grpo',
    '--logging_steps',
    '1',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const rewards = readMetrics(out)
    .map((l) => l.reward)
    .filter((x) => typeof x === 'number');
  assert.equal(rewards.length, 24);
  const first = rewards.slice(0, 6).reduce((a, b) => a + b) / 6,
    last = rewards.slice(-6).reduce((a, b) => a + b) / 6;
  assert.ok(
    last > first + 0.1,
    `mean reward of the first 6 steps ${first.toFixed(3)}, of the last 6 ${last.toFixed(3)}`,
  );
  assert.ok(existsSync(join(out, 'model.safetensors')));
});

test(
  "tsdpo rloo: TRL's metrics, and the mean sentiment reward " + 'rises within 24 steps (KL in the reward, beta 0.01)',
  () => {
    // At RLOOConfig's beta 0.05 the KL penalty outweighs the demo reward's small spread (sigmoid of an
    // AFINN score: most completions score near 0.5) and the policy settles on neutral text.
    const out = join(root, 'rloo');
    const r = runCli([
      'rloo',
      ...FAST,
      '--output',
      out,
      '--max_steps',
      '24',
      '--per_device_train_batch_size',
      '16',
      '--num_generations',
      '8',
      '--learning_rate',
      '2e-3',
      '--beta',
      '0.01',
      '--lr_scheduler_type',
      'constant',
      '--logging_steps',
      '1',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const lines = readMetrics(out);
    for (const k of [
      'reward',
      'reward_std',
      'rewards/sentiment/mean',
      'kl',
      'entropy',
      'clip_ratio/region_mean',
      'completions/mean_length',
    ])
      assert.ok(k in lines[0], k);
    const rewards = lines.map((l) => l.reward).filter((x) => typeof x === 'number');
    assert.equal(rewards.length, 24);
    const first = rewards.slice(0, 6).reduce((a, b) => a + b) / 6,
      last = rewards.slice(-6).reduce((a, b) => a + b) / 6;
    assert.ok(
      last > first + 0.1,
      `mean reward of the first 6 steps ${first.toFixed(3)}, of the last 6 ${last.toFixed(3)}`,
    );
  },
);

test("tsdpo grpo: a batch that splits a prompt's group names the numbers to change", () => {
  const r = runCli([
    'grpo',
    ...FAST,
    '--output',
    join(root, 'bad-bs'),
    '--per_device_train_batch_size',
    '6',
    '--num_generations',
    '4',
  ]);
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    new RegExp(
      /per_device_train_batch_size \(6\) x gradient_accumulation_steps \(1\) = 6 completions per step /.source +
        /is not a multiple of num_generations \(4\)/.source,
    ),
  );
  assert.match(r.stderr, /--per_device_train_batch_size 8/);
});

for (const [name, body, want] of [
  [
    'throws',
    'export default function boom() { throw new Error("no judge"); }',
    /reward function boom \(.*boom\.mjs\) threw .*first prompt .*: no judge/,
  ],
  [
    'returns NaN',
    'export default function nanny(p, c) { return c.map((_, i) => (i === 1 ? NaN : 1)); }',
    /reward function nanny \(.*nanny\.mjs\) returned NaN for completion 1 of prompt "/,
  ],
  [
    'returns the wrong length',
    'export default function short(p, c) { return [1]; }',
    /reward function short \(.*short\.mjs\) returned 1 rewards for 4 completions/,
  ],
] as const) {
  test(`tsdpo grpo: a reward module that ${name} is an error naming the module and the prompt`, () => {
    const file = join(root, `${/function (\w+)/.exec(body)![1]}.mjs`);
    writeFileSync(file, body);
    const r = runCli([
      'grpo',
      ...FAST,
      '--output',
      join(root, `bad-${name}`),
      '--per_device_train_batch_size',
      '4',
      '--num_generations',
      '4',
      '--max_steps',
      '1',
      '--reward_funcs',
      file,
    ]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, want);
  });
}

test('tsdpo grpo --help and tsdpo rloo --help list their options', () => {
  const g = runCli(['grpo', '--help']);
  for (const k of [
    '--num_generations',
    '--loss_type',
    '--scale_rewards',
    '--reward_funcs',
    '--mask_truncated_completions',
    '--epsilon_high',
  ])
    assert.match(g.stdout, new RegExp(k));
  const r = runCli(['rloo', '--help']);
  for (const k of ['--normalize_advantages', '--reward_clip_range', '--beta']) assert.match(r.stdout, new RegExp(k));
});
