// What the README promises, tried from the command line as a new user would (issue 19): prompt-less
// data (implicit prompt, Anthropic HH) trains; --use_peft works with the defaults on every family
// (PEFT's target modules per model_type); every fixture family trains with only --model --data
// --output; logprobs reads preference files; --version; --device auto shows tsdpo's notice only.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ROOT, tempDir } from '../helpers/assets.js';
import { DEMO_MODEL, familyModel, runCli } from '../helpers/cli.js';
import { ARCHS } from '../models/fixtures.js';
import { tinyPreferences } from '../train/tiny.js';

let root = '';
const jsonl = (name: string, rows: unknown[]): string => {
  const file = join(root, name);
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
};
const ok = (args: string[]): string => {
  const r = runCli(args);
  assert.equal(r.status, 0, `tsdpo ${args.join(' ')}\n${r.stderr}`);
  return r.stderr;
};
const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);

before(() => {
  root = tempDir('tsdpo-promises-');
});

test('--version prints package.json version', () => {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const r = runCli(['--version']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), version);
});

test('implicit-prompt and Anthropic HH files train with dpo and sft; a named prompt column must exist', () => {
  const implicit = jsonl('implicit.jsonl', [
    { chosen: 'The movie was great fun.', rejected: 'The movie was dull.' },
    { chosen: 'The plot was clever.', rejected: 'The plot was thin.' },
  ]);
  const hh = jsonl('hh.jsonl', [
    {
      chosen: '\n\nHuman: How was the movie?\n\nAssistant: Great fun.',
      rejected: '\n\nHuman: How was the movie?\n\nAssistant: Dull.',
    },
  ]);
  for (const [file, format] of [
    [implicit, 'standard, implicit prompt'],
    [hh, 'standard, Anthropic HH'],
  ]) {
    for (const cmd of ['dpo', 'sft']) {
      const err = ok([
        cmd,
        '--model',
        DEMO_MODEL,
        '--data',
        file,
        '--output',
        join(root, `${cmd}-${format.length}`),
        '--max_steps',
        '1',
        '--device',
        'cpu',
      ]);
      assert.ok(err.includes(`(${cmd === 'sft' ? 'preference prompt + chosen (' : ''}${format})`), err);
    }
  }
  const r = runCli([
    'dpo',
    '--model',
    DEMO_MODEL,
    '--data',
    implicit,
    '--output',
    join(root, 'named'),
    '--prompt_column',
    'question',
    '--device',
    'cpu',
  ]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /implicit\.jsonl line 1: field 'question': is missing/);
});

test(
  'every fixture family trains with only --model --data ' + "--output, and with --use_peft on PEFT's default targets",
  () => {
    assert.match(
      runCli(['dpo', '--help']).stdout.replace(/\s+/g, ' '),
      /none: PEFT's default for the model_type \(gpt2: c_attn/,
    );
    const data = tinyPreferences(root, 8);
    for (const arch of ARCHS) {
      const model = familyModel(arch, join(root, `model-${arch}`));
      ok(['dpo', '--model', model, '--data', data, '--output', join(root, `full-${arch}`)]);
      ok(['dpo', '--model', model, '--data', data, '--output', join(root, `lora-${arch}`), '--use_peft']);
      const cfg = JSON.parse(readFileSync(join(root, `lora-${arch}`, 'adapter_config.json'), 'utf8')) as {
        target_modules: string[];
      };
      assert.deepEqual(cfg.target_modules, arch === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'], arch);
    }
  },
);

test('logprobs on a preference file: chosen / rejected log-probs, and the log-ratio margin against --reference', () => {
  const rows = [
    { prompt: 'The movie was', chosen: ' great fun.', rejected: ' dull.' },
    { prompt: 'The plot was', chosen: ' clever.', rejected: ' thin and slow.' },
  ];
  assert.match(
    runCli(['logprobs', '--help']).stdout.replace(/\s+/g, ' '),
    /"margin" = \(chosen_logp - ref_chosen_logp\) - \(rejected_logp - ref_rejected_logp\)/,
  );
  const pairs = jsonl('pairs.jsonl', rows);
  const base = ['logprobs', '--model', DEMO_MODEL, '--input', pairs, '--device', 'cpu'];
  const scored = lines(runCli(base).stdout);
  // The same numbers as the {prompt, completion} sequence form of each completion.
  const seqs = jsonl(
    'seqs.jsonl',
    rows.flatMap((r) => [
      { prompt: r.prompt, completion: r.chosen },
      { prompt: r.prompt, completion: r.rejected },
    ]),
  );
  const single = lines(runCli(['logprobs', '--model', DEMO_MODEL, '--input', seqs, '--device', 'cpu']).stdout);
  scored.forEach((s, i) => {
    assert.ok(
      Math.abs(s.chosen_logp - single[2 * i].logp) < 1e-4 && Math.abs(s.rejected_logp - single[2 * i + 1].logp) < 1e-4,
      JSON.stringify([s, single]),
    );
    assert.deepEqual([s.chosen_tokens, s.rejected_tokens], [single[2 * i].tokens, single[2 * i + 1].tokens]);
    assert.equal(s.margin, undefined);
  });
  for (const s of lines(runCli([...base, '--reference', DEMO_MODEL]).stdout))
    assert.equal(s.margin, 0, 'a model against itself');
  const array = join(root, 'pairs.json'); // a JSON array is preference data too (sequences come as JSON lines)
  writeFileSync(array, JSON.stringify(rows));
  assert.deepEqual(
    lines(runCli(['logprobs', '--model', DEMO_MODEL, '--input', array, '--device', 'cpu']).stdout),
    scored,
  );
  const policy = join(root, 'policy');
  ok([
    'dpo',
    '--model',
    DEMO_MODEL,
    '--data',
    pairs,
    '--output',
    policy,
    '--max_steps',
    '3',
    '--learning_rate',
    '1e-3',
    '--device',
    'cpu',
  ]);
  for (const s of lines(
    runCli(['logprobs', '--model', policy, '--reference', DEMO_MODEL, '--input', pairs, '--device', 'cpu']).stdout,
  )) {
    assert.ok(
      Math.abs(s.margin - (s.chosen_logp - s.ref_chosen_logp - (s.rejected_logp - s.ref_rejected_logp))) < 1e-9,
    );
    assert.ok(s.margin > 0, `DPO on these pairs raises the margin: ${JSON.stringify(s)}`);
  }
});

test("--device auto: stderr holds at most tsdpo's own one-line notice (no Dawn warnings)", () => {
  const input = jsonl('lp.jsonl', [{ prompt: 'The movie was', completion: ' great.' }]);
  const r = runCli(['logprobs', '--model', DEMO_MODEL, '--input', input]);
  assert.equal(r.status, 0, r.stderr);
  const err = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(err.length <= 1 && err.every((l) => l.startsWith('tsdpo: ')), `stderr:\n${r.stderr}`);
});
