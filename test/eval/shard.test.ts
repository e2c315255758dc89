// --shard i/n: the reference log-prob pass (tsdpo dpo --precompute_ref_log_probs) and tsdpo eval split
// in two parts and merged give exactly the unsharded result: the same cached log-probs, the same
// samples, rewards and KL terms, the same summary. Plus the shard arithmetic and the merge's errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { parseShard, shardRange } from '../../src/eval/shard.js';
import { BIN, DEMO_MODEL } from '../helpers/cli.js';
import { tempRoot, tinyPreferences } from '../train/tiny.js';

let root = '';
const tsdpo = (args: string[], env: Record<string, string> = {}) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(r.status, 0, `tsdpo ${args.join(' ')}:\n${r.stderr}`);
  return r;
};

before(() => {
  root = tempRoot();
});

test('parseShard / shardRange: i/n, whole units, every row in exactly one part', () => {
  assert.deepEqual(parseShard('1/4'), { index: 1, count: 4 });
  for (const bad of ['4/4', '-1/2', '1', 'a/b', '0/0']) assert.throws(() => parseShard(bad), /--shard .*expected i\/n/);
  for (const [total, n, unit] of [
    [10, 2, 4],
    [10, 3, 1],
    [3, 4, 1],
    [17, 5, 3],
  ]) {
    const parts = Array.from({ length: n }, (_, i) => shardRange(total, { index: i, count: n }, unit));
    assert.equal(parts[0][0], 0);
    assert.equal(parts[n - 1][1], total);
    parts.forEach(([a, b], i) => {
      assert.ok(a <= b);
      if (i > 0) assert.equal(a, parts[i - 1][1]);
      if (a < total) assert.equal(a % unit, 0, 'parts start at a batch boundary');
    });
  }
});

// 10 pairs in batches of 4: dpo's part 0 runs batch 0 (pairs 0-3), part 1 batches 1-2 (pairs 4-9); kto
// unpairs them into 20 examples: part 0 runs batches 0-1 (0-7), part 1 batches 2-4 (8-19).
for (const [trainer, parts] of [
  ['dpo', ['0\\.\\.3 of 10', '4\\.\\.9 of 10']],
  ['kto', ['0\\.\\.7 of 20', '8\\.\\.19 of 20']],
] as const) {
  test(
    `${trainer} --precompute_ref_log_probs --shard 0/2 and ` + `1/2, merged by the next run, equal the unsharded pass`,
    () => {
      const data = tinyPreferences(root, 10);
      const args = (out: string) => [
        trainer,
        '--model',
        DEMO_MODEL,
        '--data',
        data,
        '--output',
        join(root, trainer, out),
        '--device',
        'cpu',
        '--precompute_ref_log_probs',
        '--per_device_train_batch_size',
        '4',
        '--max_steps',
        '1',
        '--save_steps',
        '0',
        '--learning_rate',
        '1e-3',
      ];
      const whole = join(root, trainer, 'cache-whole'),
        sharded = join(root, trainer, 'cache-sharded');
      tsdpo(args('run-whole'), { TSDPO_CACHE_DIR: whole });
      for (const i of [0, 1]) {
        const r = tsdpo([...args('run-sharded'), '--shard', `${i}/2`], { TSDPO_CACHE_DIR: sharded });
        assert.match(r.stderr, new RegExp(`examples ${parts[i]} \\(part ${i}/2\\) written to`));
        assert.doesNotMatch(r.stderr, /step=1/, 'a shard run stops before training');
      }
      const r = tsdpo(args('run-sharded'), { TSDPO_CACHE_DIR: sharded });
      assert.match(r.stderr, /merged 2 shards/);
      const cache = (dir: string) => readdirSync(dir).filter((f) => /^ref-logps-[0-9a-f]+\.json$/.test(f));
      assert.deepEqual(cache(sharded), cache(whole), 'the same cache key');
      const [file] = cache(whole);
      const want = JSON.parse(readFileSync(join(whole, file), 'utf8')) as number[][];
      assert.equal(want.length, trainer === 'dpo' ? 10 : 20);
      assert.deepEqual(JSON.parse(readFileSync(join(sharded, file), 'utf8')), want);
      const metrics = (out: string) =>
        readFileSync(join(root, trainer, out, 'metrics.jsonl'), 'utf8')
          .split('\n')[0]
          .replace(/"tokens_per_second":[\d.]+/, '');
      assert.equal(metrics('run-sharded'), metrics('run-whole'));
    },
  );
}

test('eval --shard 0/2 and 1/2, merged by tsdpo merge-shards, equal the unsharded eval', () => {
  const prompts = join(root, 'prompts.txt');
  writeFileSync(prompts, 'The movie was\nThis film was\nThe plot of this long story was\nThe acting\nThe ending was\n');
  // 5 prompts x 3 samples in batches of 4: generation batches cross prompt and shard boundaries.
  const base = [
    'eval',
    '--device',
    'cpu',
    '--model',
    join(root, 'dpo', 'run-whole'),
    '--reference',
    DEMO_MODEL,
    '--prompts',
    prompts,
    '--samples',
    '3',
    '--max_new_tokens',
    '8',
    '--batch_size',
    '4',
    '--seed',
    '3',
    '--temperature',
    '1,0.7',
  ];
  const whole = tsdpo([...base, '--json', '--output', join(root, 'whole.jsonl')]);
  const one = join(root, 'one.jsonl');
  tsdpo([...base, '--shard', '0/1', '--output', one]);
  for (const i of [0, 1]) tsdpo([...base, '--shard', `${i}/2`, '--output', join(root, `part-${i}.jsonl`)]);
  const parts = [join(root, 'part-1.jsonl'), join(root, 'part-0.jsonl')];
  const merged = tsdpo(['merge-shards', '--json', '--output', join(root, 'merged.jsonl'), ...parts]);
  assert.equal(merged.stdout, whole.stdout, 'the same summary');
  assert.equal(whole.stdout.trim().split('\n').length, 2, 'one line per temperature');
  assert.equal(
    readFileSync(join(root, 'merged.jsonl'), 'utf8'),
    readFileSync(join(root, 'whole.jsonl'), 'utf8'),
    'the same samples and rewards',
  );
  // KL terms, unrounded: the parts' lines are the whole run's.
  type Line = { prompt_index: number; sample: number; model: string; temperature: number; kl_term?: number };
  const lines = (f: string) =>
    readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => JSON.parse(l) as Line);
  const order = (ls: ReturnType<typeof lines>) =>
    ls.sort(
      (a, b) =>
        a.temperature - b.temperature ||
        a.model.localeCompare(b.model) ||
        a.prompt_index - b.prompt_index ||
        a.sample - b.sample,
    );
  assert.deepEqual(order(parts.flatMap(lines)), order(lines(one)));
  assert.ok(
    lines(one).some((l) => typeof l.kl_term === 'number' && l.kl_term !== 0),
    'the policy differs from its reference',
  );
  // The text summary, and the errors of a wrong set of parts.
  assert.match(tsdpo(['merge-shards', ...parts]).stdout, /5 prompts x 3 samples per model, temperature 1/);
  const bad = spawnSync(process.execPath, [BIN, 'merge-shards', parts[0]], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /parts 0\/2 are missing/);
  const notShard = spawnSync(process.execPath, [BIN, 'merge-shards', join(root, 'whole.jsonl')], { encoding: 'utf8' });
  assert.match(notShard.stderr, /whole\.jsonl:1: not a shard file of tsdpo eval/);
});
