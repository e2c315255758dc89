// The command line: --help lists every option with its default; a config file sets options and
// flags override it; bad data names file, line and field; --skip_invalid counts skipped rows.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { runCli } from '../helpers/cli.js';
import { COMMON_OPTIONS, DPO_OPTIONS } from '../../src/train/config.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tempRoot, tinyModel, tinyPreferences } from './tiny.js';

const run = (...args: string[]) => runCli(args);
let root = '',
  model = '',
  data = '';

before(async () => {
  await initEngine({ device: 'cpu' });
  root = tempRoot();
  model = await tinyModel(root, 8);
  data = tinyPreferences(root, 8);
});

test('dpo --help lists every option with its default', () => {
  const r = run('dpo', '--help');
  assert.equal(r.status, 0);
  for (const [key, spec] of Object.entries({ ...COMMON_OPTIONS, ...DPO_OPTIONS })) {
    assert.match(r.stdout, new RegExp(`--${key}\\b`), `--help lacks --${key}`);
    assert.match(r.stdout, new RegExp(`--${key}[^\\n]*\\n?[^\\n]*default`), `--${key} shows no default`);
    void spec;
  }
  assert.match(run('--help').stdout, /dpo[\s\S]*sft[\s\S]*logprobs[\s\S]*generate[\s\S]*eval/);
});

test('config file sets options, flags override it', () => {
  const out = join(root, 'cfg');
  const cfgFile = join(root, 'run.yaml');
  writeFileSync(
    cfgFile,
    `model_name_or_path: ${model}\ndataset: ${data}\noutput_dir: ${out}\nmax_steps: ` +
      `3\nbeta: 0.5\nlearning_rate: 1.0e-3\nlogging_steps: 1\ndevice: cpu\n`,
  );
  const r = run('dpo', '--config', cfgFile, '--max_steps', '2', '--per_device_train_batch_size', '2');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readMetrics(out).filter((l) => 'loss' in l).length, 2, 'flag max_steps 2 overrides the file');
  writeFileSync(cfgFile, 'bogus_option: 1\n');
  assert.match(run('dpo', '--config', cfgFile).stderr, /unknown option 'bogus_option'/);
});

test('bad data names file, line and field; --skip_invalid skips and counts', () => {
  const bad = join(root, 'bad.jsonl');
  writeFileSync(
    bad,
    [
      JSON.stringify({ prompt: 'A', chosen: ' good.', rejected: ' bad.' }),
      '{"prompt": "B", "chosen": " x"',
      JSON.stringify({ prompt: 'C', chosen: ' same', rejected: ' same' }),
      JSON.stringify({ prompt: 'D', chosen: '', rejected: ' bad.' }),
      JSON.stringify({ prompt: 'E', chosen: ' nice.', rejected: ' awful.' }),
    ].join('\n'),
  );
  const r = run(
    'dpo',
    '--model',
    model,
    '--data',
    bad,
    '--output',
    join(root, 'bad-out'),
    '--max_steps',
    '1',
    '--device',
    'cpu',
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /bad\.jsonl line 2: malformed JSON/);
  const s = run(
    'dpo',
    '--model',
    model,
    '--data',
    bad,
    '--output',
    join(root, 'skip-out'),
    '--max_steps',
    '1',
    '--device',
    'cpu',
    '--skip_invalid',
    '--per_device_train_batch_size',
    '2',
  );
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stderr, /2 examples from 5 rows .*skipped 3 invalid/);
});

test('logprobs: one JSON line per input line, in order; bad lines name the line', () => {
  const input = join(root, 'lp.jsonl');
  writeFileSync(
    input,
    [
      JSON.stringify({ prompt: 'The movie was', completion: ' great.' }),
      JSON.stringify({ input_ids: [1, 2, 3], completion_mask: [0, 1, 1] }),
    ].join('\n'),
  );
  const r = run('logprobs', '--model', model, '--input', input, '--device', 'cpu');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[1].tokens, 2);
  assert.ok(lines[0].logp < 0 && Number.isFinite(lines[0].logp));
  writeFileSync(input, JSON.stringify({ input_ids: [1, 99999], completion_mask: [0, 1] }));
  assert.match(
    run('logprobs', '--model', model, '--input', input, '--device', 'cpu').stderr,
    /lp\.jsonl:1: input_ids\[1\] = 99999/,
  );
});
