// `tsdpo eval`: a policy trained by `tsdpo dpo` to prefer positive completions beats its reference
// under the sentiment reward (measured here: reward 0.675 vs 0.509, win rate 0.703 ± 0.031, KL
// 13.4 nats; the bounds below leave room for other CPUs' rounding); a model against itself scores
// KL 0 and win rate 1/2 exactly; a reward module is used as given (its values are in --output, and
// the summary follows from them); bad input names the file, line and field, or the option.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { DEMO_MODEL, runCli } from '../helpers/cli.js';
import { tempRoot, tinyPreferences } from '../train/tiny.js';

const run = (...args: string[]) => runCli(args);
let root = '',
  prompts = '';

interface Result {
  prompts: number;
  policy_reward: number;
  reference_reward: number;
  kl: number;
  kl_se: number;
  win_rate: number;
  win_rate_se: number;
}
const evalJson = (...args: string[]): Result => {
  const r = run('eval', '--device', 'cpu', '--json', '--prompts', prompts, ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim());
};

before(() => {
  root = tempRoot();
  prompts = join(root, 'prompts.txt');
  const subjects = [
    'The movie',
    'This film',
    'The plot',
    'The acting',
    'The ending',
    'The story',
    'The cast',
    'The score',
  ];
  writeFileSync(prompts, `${subjects.map((s) => `${s} was`).join('\n')}\n\n`);
});

test('eval: a model against itself: KL 0, win rate 1/2, equal rewards', () => {
  const r = evalJson('--model', DEMO_MODEL, '--reference', DEMO_MODEL, '--samples', '3', '--max_new_tokens', '8');
  assert.equal(r.prompts, 8, 'blank lines are skipped');
  assert.equal(r.kl, 0);
  assert.equal(r.win_rate, 0.5);
  assert.equal(r.policy_reward, r.reference_reward);
});

test('eval: a DPO policy trained on positive-vs-negative pairs wins against its reference', () => {
  const out = join(root, 'dpo');
  const t = run(
    'dpo',
    '--model_name_or_path',
    DEMO_MODEL,
    '--dataset',
    tinyPreferences(root, 32),
    '--output_dir',
    out,
    '--device',
    'cpu',
    '--max_steps',
    '30',
    '--per_device_train_batch_size',
    '8',
    '--learning_rate',
    '1e-3',
    '--beta',
    '0.1',
    '--save_steps',
    '0',
    '--logging_steps',
    '10',
  );
  assert.equal(t.status, 0, t.stderr);
  const r = evalJson('--model', out, '--reference', DEMO_MODEL, '--samples', '8', '--max_new_tokens', '8');
  assert.ok(
    r.policy_reward > r.reference_reward + 0.08,
    `policy reward ${r.policy_reward} vs reference ${r.reference_reward}`,
  );
  assert.ok(r.win_rate > 0.6, `win rate ${r.win_rate} ± ${r.win_rate_se}`);
  assert.ok(r.kl > 0, `KL ${r.kl}`);
});

test('eval: a LoRA policy against its base model (the default reference), at two temperatures', () => {
  const out = join(root, 'dpo-lora');
  const t = run(
    'dpo',
    '--model_name_or_path',
    DEMO_MODEL,
    '--dataset',
    tinyPreferences(root, 32),
    '--output_dir',
    out,
    '--device',
    'cpu',
    '--use_peft',
    '--lora_r',
    '8',
    '--lora_alpha',
    '16',
    '--lora_target_modules',
    'c_attn,c_proj,c_fc',
    '--max_steps',
    '20',
    '--per_device_train_batch_size',
    '8',
    '--learning_rate',
    '5e-3',
    '--save_steps',
    '0',
    '--logging_steps',
    '10',
  );
  assert.equal(t.status, 0, t.stderr);
  const r = run(
    'eval',
    '--device',
    'cpu',
    '--json',
    '--prompts',
    prompts,
    '--model',
    DEMO_MODEL,
    '--adapter',
    out,
    '--temperature',
    '0.7,1',
    '--samples',
    '4',
    '--max_new_tokens',
    '8',
  );
  assert.equal(r.status, 0, r.stderr);
  const [cool, one] = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Result & { temperature: number });
  assert.deepEqual([cool.temperature, one.temperature], [0.7, 1]);
  assert.equal(cool.kl, null, 'no KL estimate away from temperature 1');
  assert.ok(one.kl > 0, `KL ${one.kl}: the adapter changes the policy, the reference is the base model`);
  // Measured: at 0.7 reward 0.690 vs 0.511, win rate 0.695 ± 0.076; at 1 0.590 vs 0.527, 0.551 ± 0.080.
  assert.ok(cool.policy_reward > cool.reference_reward, `rewards ${cool.policy_reward} vs ${cool.reference_reward}`);
});

test('eval: a reward module judges; --output holds every sample, and the summary follows from it', () => {
  const mod = join(root, 'length-reward.mjs');
  writeFileSync(
    mod,
    'export default (prompt, completion) => completion.length + (prompt.startsWith("The movie") ? 100 : 0);\n',
  );
  const samples = join(root, 'samples.jsonl');
  const r = evalJson(
    '--model',
    DEMO_MODEL,
    '--reference',
    DEMO_MODEL,
    '--reward',
    mod,
    '--samples',
    '2',
    '--max_new_tokens',
    '6',
    '--temperature',
    '1.5',
    '--seed',
    '3',
    '--output',
    samples,
  );
  const rows = readFileSync(samples, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { prompt: string; model: string; completion: string; reward: number });
  assert.equal(rows.length, 2 * 8 * 2);
  for (const x of rows) assert.equal(x.reward, x.completion.length + (x.prompt.startsWith('The movie') ? 100 : 0));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const pol = rows.filter((x) => x.model === 'policy'),
    ref = rows.filter((x) => x.model === 'reference');
  assert.ok(Math.abs(r.policy_reward - mean(pol.map((x) => x.reward))) < 1e-3);
  // The win rate by brute force over the file: per prompt, every policy sample against every reference sample.
  const byPrompt = [...new Set(rows.map((x) => x.prompt))].map((p) => {
    const a = pol.filter((x) => x.prompt === p),
      b = ref.filter((x) => x.prompt === p);
    let s = 0;
    for (const x of a) for (const y of b) s += x.reward > y.reward ? 1 : x.reward === y.reward ? 0.5 : 0;
    return s / (a.length * b.length);
  });
  assert.ok(Math.abs(r.win_rate - mean(byPrompt)) < 1e-4);
  assert.equal(r.kl, null, 'no KL estimate away from temperature 1');
});

test('eval: chat prompts (message lists, or --chat on text) are rendered with the chat template', () => {
  const dir = join(root, 'chat-model');
  cpSync(DEMO_MODEL, dir, { recursive: true });
  writeFileSync(
    join(dir, 'chat_template.jinja'),
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% " +
      'endfor %}{% if add_generation_prompt %}assistant:{% endif %}',
  );
  const jsonl = join(root, 'chat.jsonl'),
    txt = join(root, 'chat.txt'),
    samples = join(root, 'chat-samples.jsonl');
  writeFileSync(jsonl, `${JSON.stringify({ prompt: [{ role: 'user', content: 'The movie was' }] })}\n`);
  writeFileSync(txt, 'The movie was\n');
  for (const args of [
    ['--prompts', jsonl],
    ['--prompts', txt, '--chat'],
  ]) {
    const r = run(
      'eval',
      '--device',
      'cpu',
      '--json',
      '--model',
      dir,
      '--reference',
      dir,
      '--samples',
      '1',
      '--max_new_tokens',
      '2',
      '--output',
      samples,
      ...args,
    );
    assert.equal(r.status, 0, r.stderr);
    const prompts = readFileSync(samples, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).prompt);
    assert.deepEqual([...new Set(prompts)], ['user: The movie was\nassistant:']);
  }
  assert.match(
    run('eval', '--device', 'cpu', '--model', DEMO_MODEL, '--reference', DEMO_MODEL, '--prompts', jsonl).stderr,
    /chat\.jsonl line 1: the data is conversational [^\n]* has no chat template/,
  );
  assert.match(
    run('eval', '--device', 'cpu', '--model', DEMO_MODEL, '--reference', DEMO_MODEL, '--prompts', txt, '--chat').stderr,
    /--chat: the tokenizer of [^\n]* has no chat template/,
  );
});

test('eval: bad input names the file, line and field, or the option', () => {
  const base = ['eval', '--device', 'cpu', '--model', DEMO_MODEL];
  assert.match(run(...base, '--prompts', prompts).stderr, /--reference is required/);
  const jsonl = join(root, 'bad.jsonl');
  writeFileSync(jsonl, '{"prompt": "The movie was"}\n{"text": "no prompt here"}\n');
  assert.match(
    run(...base, '--reference', DEMO_MODEL, '--prompts', jsonl).stderr,
    /bad\.jsonl line 2: field 'prompt': is missing/,
  );
  const noFn = join(root, 'no-fn.mjs');
  writeFileSync(noFn, 'export const x = 1;\n');
  assert.match(
    run(...base, '--reference', DEMO_MODEL, '--prompts', prompts, '--reward', noFn).stderr,
    /no-fn\.mjs: the module exports no function/,
  );
  const nan = join(root, 'nan.mjs');
  writeFileSync(nan, 'export function reward() { return NaN; }\n');
  assert.match(
    run(...base, '--reference', DEMO_MODEL, '--prompts', prompts, '--reward', nan, '--max_new_tokens', '2').stderr,
    /reward: got NaN for prompt 0 \("The movie was"\)[^\n]*a reward must be a finite number/,
  );
  assert.match(
    run(...base, '--reference', DEMO_MODEL, '--prompts', prompts, '--samples', '0').stderr,
    /--samples must be a whole number >= 1, got '0'/,
  );
  const long = join(root, 'long.txt');
  writeFileSync(long, `The movie was\n${'The movie was '.repeat(30)}\n`);
  assert.match(
    run(...base, '--reference', DEMO_MODEL, '--prompts', long).stderr,
    new RegExp(
      /long\.txt line 2: the prompt has \d+ tokens; with --max_new_tokens 32 it needs \d+ positions, /.source +
        /above the model's 64 \(n_positions\)/.source,
    ),
  );
});
