// tsdpo kto from the command line (bin/tsdpo.js in a child process) on the demo model: --help lists
// KTO's options, a few steps run and write TRL's metric names, the saved model loads and scores,
// --resume continues exactly;
// bad input (labels, batch size, order, options KTO lacks) stops with errors naming the line, field
// or option. The KL pairs follow TRL 1.13's construction (kto_trainer.py, add_kl_completion_ids).
// Numbers against TRL: test/reference/kto.test.ts.
import assert from 'node:assert/strict';
import { cpSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { klCompletions } from '../../src/data/unpaired.js';
import { COMMON_OPTIONS } from '../../src/train/config.js';
import { KTO_OPTIONS } from '../../src/train/kto.js';
import { readMetrics } from '../../src/train/trainer.js';
import { DEMO_MODEL, runCli } from '../helpers/cli.js';
import { tempRoot } from './tiny.js';

let root = '';
const jsonl = (name: string, rows: unknown[]): string => {
  const file = join(root, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
};
const subjects = ['The movie was', 'This film was', 'The plot was', 'The acting was'];
const rows = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    prompt: subjects[i % 4],
    completion: i % 2 ? ' great and fun.' : ' dull and bad.',
    label: i % 2 === 1,
  }));
const kto = (...args: string[]) => runCli(['kto', '--model', DEMO_MODEL, '--device', 'cpu', ...args]);

before(() => {
  root = tempRoot();
});

test('kto --help lists every KTO option with its default', () => {
  const r = runCli(['kto', '--help']);
  assert.equal(r.status, 0, r.stderr);
  for (const key of Object.keys({ ...COMMON_OPTIONS, ...KTO_OPTIONS }))
    assert.match(r.stdout, new RegExp(`--${key}\\b`), `--help lacks --${key}`);
  assert.match(r.stdout.replace(/\s+/g, ' '), /--loss_type <value> kto .* \(choices: "kto", "apo_zero_unpaired"/);
  assert.match(runCli(['--help']).stdout, /\bkto\b/);
});

test("tsdpo kto on the demo model: steps run with TRL 1.13's metric names; the model is saved and loads", () => {
  const out = join(root, 'run');
  const r = kto(
    '--data',
    jsonl('kto.jsonl', rows(8)),
    '--output',
    out,
    '--max_steps',
    '3',
    '--per_device_train_batch_size',
    '4',
    '--logging_steps',
    '1',
    '--learning_rate',
    '1e-3',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /8 examples from 8 rows \(unpaired; 4 desirable, 4 undesirable\)/);
  const lines = readMetrics(out).filter((l) => 'loss' in l);
  assert.equal(lines.length, 3);
  for (const k of [
    'loss',
    'grad_norm',
    'learning_rate',
    'kl',
    'entropy',
    'logits/chosen',
    'logits/rejected',
    'rewards/chosen',
    'rewards/rejected',
    'rewards/margins',
    'logps/chosen',
    'logps/rejected',
    'num_tokens',
  ]) {
    assert.ok(
      lines.every((l) => Number.isFinite(l[k])),
      `metric ${k}`,
    );
  }
  assert.ok(lines[2].loss < lines[0].loss, `the loss falls: ${lines.map((l) => l.loss).join(', ')}`);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) assert.ok(existsSync(join(out, f)), f);
  const scored = runCli([
    'logprobs',
    '--model',
    out,
    '--input',
    jsonl('seq.jsonl', [{ prompt: 'The movie was', completion: ' great and fun.' }]),
    '--device',
    'cpu',
  ]);
  assert.equal(scored.status, 0, scored.stderr);
  assert.ok(Number.isFinite((JSON.parse(scored.stdout.trim().split('\n')[0]) as { logp: number }).logp), scored.stdout);
});

test(
  'preference rows are unpaired (chosen desirable, rejected ' +
    'undesirable); LoRA with apo_zero_unpaired in random order',
  () => {
    const pairs = jsonl('pairs.jsonl', [
      { prompt: 'The movie was', chosen: ' great fun.', rejected: ' dull.' },
      { prompt: 'The plot was', chosen: ' clever.', rejected: ' thin and slow.' },
    ]);
    const out = join(root, 'lora');
    const r = kto(
      '--data',
      pairs,
      '--output',
      out,
      '--max_steps',
      '2',
      '--per_device_train_batch_size',
      '2',
      '--use_peft',
      '--loss_type',
      'apo_zero_unpaired',
      '--train_sampling_strategy',
      'random',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /4 examples from 2 rows \(paired \(standard, explicit prompt\), unpaired into 2 desirable \+ 2 undesirable\)/,
    );
    assert.ok(existsSync(join(out, 'adapter_model.safetensors')));
  },
);

test('unbalanced labels: the run prints the weight ranges TRL 1.13 recommends (Eq. 8 of arXiv:2402.01306)', () => {
  const data = jsonl(
    'unbalanced.jsonl',
    rows(4).map((r, i) => ({ ...r, label: i === 0 })),
  );
  const r = kto(
    '--data',
    data,
    '--output',
    join(root, 'unbalanced'),
    '--max_steps',
    '1',
    '--per_device_train_batch_size',
    '4',
  );
  assert.equal(r.status, 0, r.stderr);
  // 1 desirable, 3 undesirable: desirable_weight in [3 * 1 / 1, 3 * 1.33], undesirable_weight in [1 / 3 / 1.33, 1 / 3],
  // rounded to 2 places.
  assert.match(
    r.stderr,
    new RegExp(
      /1 desirable and 3 undesirable examples: TRL 1\.13 recommends EITHER desirable_weight in \[3, 3\.99\] /.source +
        /or undesirable_weight in \[0\.25, 0\.33\]/.source,
    ),
  );
  const ok = kto(
    '--data',
    data,
    '--output',
    join(root, 'unbalanced'),
    '--overwrite',
    '--max_steps',
    '1',
    '--per_device_train_batch_size',
    '4',
    '--desirable_weight',
    '3.5',
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.doesNotMatch(ok.stderr, /recommends/);
});

test(
  '--resume from a checkpoint continues in data order with ' +
    'the same KL pairs: the losses equal the uninterrupted run',
  () => {
    const full = join(root, 'resume-full'),
      cut = join(root, 'resume-cut');
    const args = [
      '--data',
      jsonl('resume.jsonl', rows(6)),
      '--max_steps',
      '5',
      '--save_steps',
      '2',
      '--per_device_train_batch_size',
      '2',
      '--logging_steps',
      '1',
      '--learning_rate',
      '1e-3',
    ];
    assert.equal(kto(...args, '--output', full).status, 0);
    // The run as if killed after its checkpoint at step 4 (mid-epoch: 3 steps an epoch).
    cpSync(full, cut, { recursive: true });
    rmSync(join(cut, 'checkpoint-5'), { recursive: true });
    const r = kto(...args, '--output', cut, '--resume');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resuming from .*checkpoint-4 \(step 4 of 5\)/);
    const loss = (dir: string) =>
      readMetrics(dir)
        .filter((l) => 'loss' in l)
        .map((l) => [l.step, l.loss, l.kl]);
    assert.deepEqual(loss(cut), loss(full));
  },
);

test('bad input names the line, the field or the option', () => {
  const out = join(root, 'bad');
  const noLabel = jsonl('nolabel.jsonl', [rows(1)[0], { prompt: 'A', completion: ' b.' }]);
  assert.match(
    kto('--data', noLabel, '--output', out).stderr,
    /nolabel\.jsonl line 2: field 'label': is missing; expected true \(desirable\) or false/,
  );
  const strLabel = jsonl('strlabel.jsonl', [{ prompt: 'A', completion: ' b.', label: 'yes' }]);
  assert.match(
    kto('--data', strLabel, '--output', out).stderr,
    /strlabel\.jsonl line 1: field 'label': is a string \("yes"\); expected true/,
  );
  const noPrompt = jsonl('noprompt.jsonl', [{ completion: ' b.', label: true }]);
  assert.match(kto('--data', noPrompt, '--output', out).stderr, /noprompt\.jsonl line 1: field 'prompt': is missing/);
  const neither = jsonl('neither.jsonl', [{ text: 'hello' }]);
  assert.match(
    kto('--data', neither, '--output', out).stderr,
    /neither\.jsonl line 1: has fields text; KTO data needs 'prompt', 'completion' and a boolean 'label'/,
  );
  const data = jsonl('ok.jsonl', rows(4));
  assert.match(
    kto('--data', data, '--output', out, '--per_device_train_batch_size', '1').stderr,
    /--per_device_train_batch_size is 1: loss_type kto estimates the KL term .* needs at least 2/,
  );
  assert.match(
    kto('--data', data, '--output', out, '--train_sampling_strategy', 'random').stderr,
    /--train_sampling_strategy random: loss_type kto needs sequential/,
  );
  assert.match(
    kto('--data', data, '--output', out, '--truncation_mode', 'keep_end').stderr,
    /--truncation_mode keep_end: KTO keeps the start/,
  );
  assert.match(
    kto('--data', data, '--output', out, '--max_prompt_length', '8').stderr,
    /--max_prompt_length 8: not an option of tsdpo kto/,
  );
  assert.match(
    kto('--data', data, '--output', out, '--loss_type', 'sigmoid').stderr,
    /--loss_type.*sigmoid.*(kto|apo_zero_unpaired)/,
  );
});

test('KL pairs: completions rotate by one within blocks of the train batch size, as TRL 1.13', () => {
  const ex = [[0], [1], [2], [3], [4], [5], [6]].map((c) => ({ completionIds: c }));
  // Blocks [0..3], [4..6]: (x_1, y_n), (x_2, y_1), ..., (x_n, y_{n-1}).
  assert.deepEqual(klCompletions(ex, 4), [[3], [0], [1], [2], [6], [4], [5]]);
  // A last block of one pairs the example with its own completion.
  assert.deepEqual(klCompletions(ex, 3), [[2], [0], [1], [5], [3], [4], [6]]);
});
