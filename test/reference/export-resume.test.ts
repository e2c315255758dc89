// Checkpoints both ways between tsdpo and TRL. A tsdpo checkpoint continues in TRL: `tsdpo dpo` runs
// 4 steps (a checkpoint at 2), the exported run resumes tsdpo's checkpoint-2 under accelerate with two
// CPU processes (launch.sh --resume_from_checkpoint; trl_resume.py writes TRL's optimizer.pt,
// scheduler.pt and trainer_state.json), and TRL's steps 3 and 4 equal tsdpo's, metric by metric. A
// TRL checkpoint (output/checkpoint-4, with trainer_state.json, optimizer.pt, ...) loads in tsdpo
// with transformers' logits, and `tsdpo logprobs` / `generate` / `eval` run on it.
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
  NOT_COMPARED,
  preferenceRows,
  pythonEnv,
  referenceAvailable,
  runPython,
  tinyFamily,
  VENV_PYTHON,
  writeRows,
} from './harness.js';

// TRL keeps its num_tokens counter outside its checkpoints (DPOTrainer._total_train_tokens): a resumed
// run, from TRL's own checkpoint too, counts from the resume.
NOT_COMPARED.num_tokens = "TRL's token counter restarts at a resume (it is not in TRL's checkpoints)";

const avail = referenceAvailable();
const root = tempDir('tsdpo-ref-export-resume-');
const IDS = [[1, 10, 20, 30, 40, 50, 3, 7, 9]];
interface Run {
  ts: string;
  exported: string;
  trl: Record<string, number>[] | null;
  stderr: string;
}
const runs = new Map<string, Run>();

/** tsdpo dpo 4 steps (checkpoints at 2 and 4), its export, and the export resuming tsdpo's checkpoint-2. */
function resumed(name: string, extra: Record<string, unknown>): Run {
  const cfgFile = join(root, `${name}.yaml`);
  writeFileSync(
    cfgFile,
    toYaml({
      model_name_or_path: tinyFamily(root, 'llama'),
      dataset: writeRows(root, 'pairs.jsonl', preferenceRows(8)),
      learning_rate: 1e-3,
      max_steps: 4,
      per_device_train_batch_size: 8,
      logging_steps: 1,
      seed: 42,
      device: 'cpu',
      save_steps: 2,
      ...extra,
    }),
  );
  const ts = join(root, `ts-${name}`),
    exported = join(root, `export-${name}`);
  const a = runCli(['dpo', '--config', cfgFile, '--output', ts]);
  assert.equal(a.status, 0, a.stderr);
  const e = runCli(['export', '--to', 'trl', '--config', cfgFile, '--output', exported]);
  assert.equal(e.status, 0, e.stderr);
  const l = spawnSync('bash', [join(exported, 'launch.sh'), '--resume_from_checkpoint', join(ts, 'checkpoint-2')], {
    encoding: 'utf8',
    env: { ...pythonEnv(root), USE_CPU: '1', NUM_PROCESSES: '2', PYTHON: VENV_PYTHON, OMP_NUM_THREADS: '1' },
  });
  const log = join(exported, 'output', 'log_history.jsonl');
  const trl =
    l.status === 0 && existsSync(log)
      ? readFileSync(log, 'utf8')
          .split('\n')
          .filter((x) => x.trim())
          .map((x) => JSON.parse(x) as Record<string, number>)
      : null;
  return { ts, exported, trl, stderr: l.stderr.slice(-3000) };
}

before(
  () => {
    if (!avail.ok) return;
    runs.set('all weights', resumed('full', {}));
    // A LoRA checkpoint: tsdpo's <module>.lora_A state is PEFT's base_model.model.<module>.lora_A.default.weight.
    runs.set('LoRA', resumed('lora', { use_peft: true, lora_r: 4, lora_alpha: 8, lora_dropout: 0 }));
  },
  { timeout: 900_000 },
);

for (const name of ['all weights', 'LoRA']) {
  test(
    `TRL resumes tsdpo's checkpoint-2 (${name}): its steps 3 and 4 are tsdpo's`,
    { skip: avail.ok ? false : avail.why },
    () => {
      const { ts, exported, trl, stderr } = runs.get(name) ?? ({} as Run);
      assert.ok(trl, `launch.sh failed:\n${stderr}`);
      const after = (h: Record<string, number>[]) => h.filter((l) => l.step > 2 && 'loss' in l);
      assert.equal(after(trl).length, 2, 'TRL logged steps 3 and 4');
      const diff = compareHistories(after(trl), after(readMetrics(ts)));
      if (process.env.TSDPO_REFERENCE_REPORT) console.log(JSON.stringify({ resume: name, max: diff.max }));
      assert.deepEqual(diff.problems, []);
      // Steps 1 and 2 are tsdpo's log history, carried in the converted trainer_state.json.
      assert.deepEqual(
        trl.filter((l) => l.step <= 2 && 'loss' in l).map((l) => l.loss),
        readMetrics(ts)
          .filter((l) => l.step <= 2 && 'loss' in l)
          .map((l) => l.loss),
      );
      for (const f of [
        'optimizer.pt',
        'scheduler.pt',
        'trainer_state.json',
        name === 'LoRA' ? 'adapter_model.safetensors' : 'model.safetensors',
      ]) {
        assert.ok(existsSync(join(exported, 'output', 'tsdpo-checkpoint-2', f)), `the converted checkpoint has ${f}`);
      }
    },
  );
}

test(
  "a TRL checkpoint folder loads in tsdpo (transformers' logits) and in tsdpo logprobs / generate / eval",
  { skip: avail.ok ? false : avail.why },
  async () => {
    const { exported, trl, stderr } = runs.get('all weights') ?? ({} as Run);
    assert.ok(trl, `launch.sh failed:\n${stderr}`);
    const ckpt = join(exported, 'output', 'checkpoint-4');
    for (const f of ['trainer_state.json', 'optimizer.pt', 'model.safetensors'])
      assert.ok(existsSync(join(ckpt, f)), `TRL's checkpoint has ${f}`);
    const job = join(root, 'logits-job.json'),
      out = join(root, 'logits.json');
    writeFileSync(job, JSON.stringify([{ model: ckpt, adapter: null, input_ids: IDS, out }]));
    await runPython([join(ROOT, 'scripts', 'reference', 'logits.py'), '--jobs', job], root);
    const want = JSON.parse(readFileSync(out, 'utf8')) as { logits: number[] };
    await initEngine({ device: 'cpu' });
    const got = await noGrad(() =>
      tidy(() => forward(loadModel(ckpt), tensor(Int32Array.from(IDS.flat()), [1, IDS[0].length], 'i32'))),
    ).toArray();
    let worst = 0;
    want.logits.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - got[i]));
    });
    assert.ok(worst <= 1e-5, `logits differ by up to ${worst}`);
    const prompts = join(root, 'prompts.txt');
    writeFileSync(prompts, 'The movie\nThis film\n');
    const lp = writeRows(root, 'lp.jsonl', [{ prompt: 'The movie', completion: ' was great.' }]);
    for (const args of [
      ['logprobs', '--model', ckpt, '--input', lp],
      ['generate', '--model', ckpt, '--prompt', 'The movie', '--max_new_tokens', '4'],
      [
        'eval',
        '--model',
        ckpt,
        '--reference',
        tinyFamily(root, 'llama'),
        '--prompts',
        prompts,
        '--samples',
        '2',
        '--max_new_tokens',
        '4',
        '--json',
      ],
    ]) {
      const r = runCli([...args, '--device', 'cpu']);
      assert.equal(r.status, 0, `tsdpo ${args[0]}: ${r.stderr}`);
    }
  },
);
