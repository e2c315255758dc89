// `tsdpo export --to trl --trainer reward|kto|grpo|rloo`: each exported folder runs under accelerate
// with two CPU processes (gloo). Reward and KTO are deterministic: their per-step metrics equal
// `tsdpo reward` / `tsdpo kto` on the same config (a batch of the whole data set, so that the
// processes' shares cannot differ from tsdpo's order). GRPO and RLOO sample: TRL's completions come
// from torch's random numbers, tsdpo's from its own generator, so the runs differ; the check is that
// the exported run trains and logs the metric names tsdpo logs (exact parity on fixed completions is
// test/reference/rl.test.ts's).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { reward as sentimentReward } from '../../src/eval/reward.js';
import { readMetrics } from '../../src/train/trainer.js';
import { ROOT, tempDir } from '../helpers/assets.js';
import { runCli } from '../helpers/cli.js';
import {
  compareHistories,
  NOT_COMPARED,
  preferenceRows,
  pythonEnv,
  referenceAvailable,
  runPython,
  tinyFamily,
  VENV_PYTHON,
  writeRows,
  type Diff,
} from './harness.js';

NOT_COMPARED.step_time = 'wall-clock time of a step (TRL GRPO / RLOO)';

const avail = referenceAvailable();
const root = tempDir('tsdpo-ref-export-trainers-');
type Trainer = 'reward' | 'kto' | 'grpo' | 'rloo';

interface Run {
  trainer: Trainer;
  exported: string;
  trl?: Record<string, number>[];
  ts?: Record<string, number>[];
  stderr?: string;
}
const runs = new Map<Trainer, Run>();

/** tsdpo `trainer` on cfg, its export, and the exported run under accelerate with two CPU processes. */
function side(trainer: Trainer, cfg: Record<string, unknown>): Run {
  const cfgFile = join(root, `${trainer}.yaml`);
  writeFileSync(cfgFile, toYaml({ logging_steps: 1, seed: 42, device: 'cpu', save_steps: 0, ...cfg }));
  const ts = join(root, `ts-${trainer}`),
    exported = join(root, `export-${trainer}`);
  const a = runCli([trainer, '--config', cfgFile, '--output', ts]);
  assert.equal(a.status, 0, a.stderr);
  const e = runCli(['export', '--to', 'trl', '--trainer', trainer, '--config', cfgFile, '--output', exported]);
  assert.equal(e.status, 0, e.stderr);
  const l = spawnSync('bash', [join(exported, 'launch.sh')], {
    encoding: 'utf8',
    env: { ...pythonEnv(root), USE_CPU: '1', NUM_PROCESSES: '2', PYTHON: VENV_PYTHON, OMP_NUM_THREADS: '1' },
  });
  const log = join(exported, 'output', 'log_history.jsonl');
  if (l.status !== 0 || !existsSync(log)) return { trainer, exported, stderr: l.stderr.slice(-3000) };
  const trl = readFileSync(log, 'utf8')
    .split('\n')
    .filter((x) => x.trim())
    .map((x) => JSON.parse(x) as Record<string, number>);
  return { trainer, exported, trl, ts: readMetrics(ts) };
}

before(
  async () => {
    if (!avail.ok) return;
    const pairs = writeRows(root, 'pairs.jsonl', preferenceRows(8));
    const model = tinyFamily(root, 'llama');
    // Both sides start from the same classifier (a causal LM's new score head is drawn by each side's own generator).
    const seqcls = join(root, 'llama-seqcls');
    await runPython([join(ROOT, 'scripts', 'reference', 'trl_reward.py'), 'make-seqcls', model, seqcls, '7'], root);
    const base = { learning_rate: 1e-3, max_steps: 3, per_device_train_batch_size: 8 };
    runs.set('reward', side('reward', { ...base, model_name_or_path: seqcls, dataset: pairs }));
    const unpaired = preferenceRows(8).map((r, i) => ({
      prompt: r.prompt,
      completion: i % 3 ? r.chosen : r.rejected,
      label: i % 3 !== 0,
    }));
    runs.set(
      'kto',
      side('kto', { ...base, model_name_or_path: model, dataset: writeRows(root, 'unpaired.jsonl', unpaired) }),
    );
    const prompts = writeRows(
      root,
      'prompts.jsonl',
      preferenceRows(4).map((r) => ({ prompt: r.prompt })),
    );
    const rl = {
      model_name_or_path: model,
      dataset: prompts,
      learning_rate: 1e-3,
      max_steps: 2,
      per_device_train_batch_size: 4,
      num_generations: 2,
      max_completion_length: 6,
      reward_funcs: ['sentiment'],
    };
    runs.set('grpo', side('grpo', { ...rl, beta: 0.04 }));
    runs.set('rloo', side('rloo', rl));
  },
  { timeout: 1_200_000 },
);

for (const trainer of ['reward', 'kto'] as const) {
  test(
    `export --to trl (${trainer}): two accelerate processes give tsdpo's run, step by step`,
    { skip: avail.ok ? false : avail.why },
    () => {
      const r = runs.get(trainer);
      assert.ok(r?.trl && r.ts, `launch.sh failed:\n${r?.stderr}`);
      const diff: Diff = compareHistories(r.trl, r.ts);
      if (process.env.TSDPO_REFERENCE_REPORT) console.log(JSON.stringify({ export: trainer, max: diff.max }));
      assert.deepEqual(diff.problems, []);
      assert.ok(r.trl.filter((l) => 'loss' in l).length === 3, 'three logged steps');
    },
  );
}

/** Names TRL logs that are bookkeeping of the loop, not of the method (tsdpo's metrics.jsonl has its own). */
const LOOP = new Set([
  'step',
  'epoch',
  'learning_rate',
  'grad_norm',
  'num_tokens',
  'step_time',
  'tokens_per_second',
  'loss',
]);

for (const trainer of ['grpo', 'rloo'] as const) {
  test(
    `export --to trl (${trainer}): the exported run samples, trains and logs tsdpo's metric names`,
    { skip: avail.ok ? false : avail.why },
    () => {
      const r = runs.get(trainer);
      assert.ok(r?.trl && r.ts, `launch.sh failed:\n${r?.stderr}`);
      const steps = (h: Record<string, number>[]) => h.filter((l) => 'loss' in l && !('train_loss' in l));
      assert.equal(steps(r.trl).length, 2, 'two logged steps');
      const trlNames = new Set(steps(r.trl).flatMap((l) => Object.keys(l)));
      const tsNames = new Set(steps(r.ts).flatMap((l) => Object.keys(l)));
      const missing = [...tsNames].filter((k) => !trlNames.has(k) && !LOOP.has(k));
      const extra = [...trlNames].filter((k) => !tsNames.has(k) && !LOOP.has(k));
      assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, 'tsdpo and TRL log the same metrics');
      for (const l of steps(r.trl)) {
        assert.ok(l.reward > 0 && l.reward < 1, `TRL's sentiment reward ${l.reward} is in (0, 1)`);
        assert.ok(
          l['completions/max_length'] <= 6,
          `max_completion_length 6 is carried (TRL sampled ${l['completions/max_length']} tokens)`,
        );
      }
    },
  );
}

test(
  "the exported sentiment reward (Python) scores texts as tsdpo's",
  { skip: avail.ok ? false : avail.why },
  async () => {
    const texts = [
      'The movie was great.',
      'not good at all',
      'Awful!! slow, boring;\nbut a joy',
      'neutral words only',
      "don't like it",
    ];
    const out = join(root, 'sentiment.json');
    const r = runs.get('grpo');
    assert.ok(r, 'the grpo export did not run');
    writeFileSync(join(root, 'texts.json'), JSON.stringify(texts));
    await runPython(
      [
        '-c',
        `import json, sys; sys.path.insert(0, ${JSON.stringify(r.exported)}); from trl_rollout import sentiment; ` +
          `json.dump(sentiment(json.load(open(${JSON.stringify(join(root, 'texts.json'))}))), ` +
          `open(${JSON.stringify(out)}, 'w'))`,
      ],
      root,
    );
    const got = JSON.parse(readFileSync(out, 'utf8')) as number[];
    assert.deepEqual(
      got.map((x) => x.toFixed(12)),
      texts.map((t) => sentimentReward(t).toFixed(12)),
    );
  },
);
