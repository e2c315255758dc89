// `tsdpo export --to trl`: the exported folder runs under accelerate with two CPU processes (gloo)
// and gives the run `tsdpo dpo` / `tsdpo sft` gives on the same config, metric by metric and step by
// step (a full-dataset batch, so that the processes' shares cannot differ from tsdpo's order); the
// model TRL saves loads in tsdpo with transformers' logits. Both sides from the command line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { noGrad, tensor, tidy } from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { loadModel } from '../../src/models/load.js';
import { forward } from '../../src/models/model.js';
import { readMetrics } from '../../src/train/trainer.js';
import { ROOT, tempDir } from '../helpers/assets.js';
import { runCli } from '../helpers/cli.js';
import {
  compareHistories,
  preferenceRows,
  pythonEnv,
  referenceAvailable,
  runPython,
  tinyFamily,
  VENV_PYTHON,
  writeRows,
  type Diff,
} from './harness.js';

const avail = referenceAvailable();
const root = tempDir('tsdpo-ref-export-');
const IDS = [[1, 10, 20, 30, 40, 50, 3, 7, 9]];

interface Run {
  trainer: 'dpo' | 'sft';
  diff?: Diff;
  exported: string;
  stderr?: string;
}
const runs: Run[] = [];

function side(trainer: 'dpo' | 'sft', data: string): Run {
  const cfgFile = join(root, `${trainer}.yaml`);
  // 8 rows in one batch of 8: each of the two processes takes 4, and the step's mean is the same.
  writeFileSync(
    cfgFile,
    toYaml({
      model_name_or_path: tinyFamily(root, 'llama'),
      dataset: data,
      learning_rate: 1e-3,
      max_steps: 3,
      per_device_train_batch_size: 8,
      logging_steps: 1,
      seed: 42,
      device: 'cpu',
      save_steps: 0,
    }),
  );
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
  return { trainer, exported, diff: compareHistories(trl, readMetrics(ts)) };
}

before(
  async () => {
    if (!avail.ok) return;
    runs.push(side('dpo', writeRows(root, 'pairs.jsonl', preferenceRows(8))));
    runs.push(
      side(
        'sft',
        writeRows(
          root,
          'pc.jsonl',
          preferenceRows(8).map((r) => ({ prompt: r.prompt, completion: r.chosen })),
        ),
      ),
    );
  },
  { timeout: 600_000 },
);

for (const trainer of ['dpo', 'sft'] as const) {
  test(
    `export --to trl (${trainer}): two accelerate processes give tsdpo's run, step by step`,
    { skip: avail.ok ? false : avail.why },
    () => {
      const r = runs.find((x) => x.trainer === trainer);
      assert.ok(r, 'the runs did not finish');
      assert.ok(r.diff, `launch.sh failed:\n${r.stderr}`);
      for (const f of [
        'config.json',
        'requirements.txt',
        'README.md',
        'accelerate/single_node.yaml',
        'accelerate/cpu.yaml',
        'accelerate/multi_node.yaml',
        'accelerate/deepspeed_zero2.yaml',
        'accelerate/deepspeed_zero3.yaml',
        'data/train.jsonl',
      ]) {
        assert.ok(existsSync(join(r.exported, f)), `${f} missing from the exported folder`);
      }
      if (process.env.TSDPO_REFERENCE_REPORT) console.log(JSON.stringify({ export: trainer, max: r.diff.max }));
      assert.deepEqual(r.diff.problems, []);
      const readme = readFileSync(join(r.exported, 'README.md'), 'utf8');
      assert.match(
        readme,
        /`device`: accelerate places the processes \(launch.sh: USE_CPU, NUM_PROCESSES\) \(this run set it to "cpu"\)/,
      );
    },
  );
}

test(
  "the model TRL saved in the exported run loads in tsdpo with transformers' logits",
  { skip: avail.ok ? false : avail.why },
  async () => {
    const r = runs.find((x) => x.trainer === 'dpo');
    assert.ok(r?.diff, 'the exported run did not finish');
    const model = join(r.exported, 'output');
    const job = join(root, 'logits-job.json'),
      out = join(root, 'logits.json');
    writeFileSync(job, JSON.stringify([{ model, adapter: null, input_ids: IDS, out }]));
    await runPython([join(ROOT, 'scripts', 'reference', 'logits.py'), '--jobs', job], root);
    const want = JSON.parse(readFileSync(out, 'utf8')) as { logits: number[] };
    await initEngine({ device: 'cpu' });
    const got = await noGrad(() =>
      tidy(() => forward(loadModel(model), tensor(Int32Array.from(IDS.flat()), [1, IDS[0].length], 'i32'))),
    ).toArray();
    let worst = 0;
    want.logits.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - got[i]));
    });
    assert.ok(worst <= 1e-5, `logits differ by up to ${worst}`);
    const lp = runCli([
      'generate',
      '--model',
      model,
      '--prompt',
      'The movie',
      '--max_new_tokens',
      '4',
      '--device',
      'cpu',
    ]);
    assert.equal(lp.status, 0, lp.stderr);
  },
);
