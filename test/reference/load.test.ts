// transformers and peft load what `tsdpo dpo` saves (a full model folder, a LoRA adapter) and give
// the logits tsdpo gives (1e-5): scripts/reference/logits.py runs in the reference venv.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { noGrad, tensor, tidy } from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { loadModel } from '../../src/models/load.js';
import { loadAdapter } from '../../src/models/lora.js';
import { forward } from '../../src/models/model.js';
import { COMMON_OPTIONS, defaultsOf, DPO_OPTIONS, type DpoConfig } from '../../src/train/config.js';
import { runDpo } from '../../src/train/run.js';
import { ROOT, tempDir } from '../helpers/assets.js';
import { preferenceRows, referenceAvailable, runPython, tinyFamily, writeRows } from './harness.js';

const avail = referenceAvailable();
const root = tempDir('tsdpo-ref-load-');
const IDS = [
  [1, 10, 20, 30, 40, 50, 3, 7, 9],
  [5, 6, 7, 8, 9, 10, 11, 12, 2],
];

interface Saved {
  name: string;
  model: string;
  adapter: string | null;
}
const saved: Saved[] = [];
const python = new Map<string, { logits: number[]; shape: number[]; model_class: string }>();

before(
  async () => {
    if (!avail.ok) return;
    await initEngine({ device: 'cpu' });
    const dataset = writeRows(root, 'train.jsonl', preferenceRows(8));
    const train = async (name: string, over: Partial<DpoConfig>): Promise<string> => {
      const out = join(root, name);
      await runDpo(
        {
          ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }),
          device: 'cpu',
          dataset,
          output_dir: out,
          learning_rate: 1e-2,
          max_steps: 3,
          per_device_train_batch_size: 4,
          logging_steps: 1,
          save_steps: 0,
          ...over,
        } as DpoConfig,
        { quiet: true, log: () => {} },
      );
      return out;
    };
    for (const family of ['llama', 'gpt2', 'gemma3']) {
      saved.push({
        name: `${family} full model`,
        model: await train(`${family}-full`, { model_name_or_path: tinyFamily(root, family) }),
        adapter: null,
      });
    }
    const base = tinyFamily(root, 'qwen3');
    const lora = await train('qwen3-lora', {
      model_name_or_path: base,
      use_peft: true,
      lora_r: 4,
      lora_alpha: 8,
      lora_target_modules: ['q_proj', 'v_proj', 'down_proj'],
    });
    saved.push({ name: 'qwen3 LoRA adapter', model: base, adapter: lora });
    const jobs = saved.map((s, i) => ({
      model: s.model,
      adapter: s.adapter,
      input_ids: IDS,
      out: join(root, `logits-${i}.json`),
    }));
    writeFileSync(join(root, 'jobs.json'), JSON.stringify(jobs));
    await runPython([join(ROOT, 'scripts', 'reference', 'logits.py'), '--jobs', join(root, 'jobs.json')], root);
    jobs.forEach((j, i) => python.set(saved[i].name, JSON.parse(readFileSync(j.out, 'utf8'))));
  },
  { timeout: 300_000 },
);

for (const name of ['llama full model', 'gpt2 full model', 'gemma3 full model', 'qwen3 LoRA adapter']) {
  test(
    `transformers${name.includes('LoRA') ? ' + peft' : ''} load tsdpo's ${name}: same logits`,
    { skip: avail.ok ? false : avail.why },
    async () => {
      const s = saved.find((x) => x.name === name)!;
      const want = python.get(name)!;
      const logitsOf = (m: ReturnType<typeof loadModel>) =>
        noGrad(() =>
          tidy(() => forward(m, tensor(Int32Array.from(IDS.flat()), [IDS.length, IDS[0].length], 'i32'))),
        ).toArray();
      const m = loadModel(s.model);
      const before = s.adapter ? await logitsOf(m) : null;
      if (s.adapter) loadAdapter(m, s.adapter);
      const got = await logitsOf(m);
      // The adapter was trained away from zero: a loader that dropped it would fail below.
      if (before)
        assert.ok(
          before.some((v, i) => Math.abs(v - got[i]) > 1e-3),
          'the trained adapter changes the logits',
        );
      assert.deepEqual(want.shape, [IDS.length, IDS[0].length, got.length / (IDS.length * IDS[0].length)]);
      let worst = 0;
      want.logits.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - got[i]));
      });
      if (process.env.TSDPO_REFERENCE_REPORT)
        console.log(JSON.stringify({ load: name, class: want.model_class, maxAbsLogitDiff: worst }));
      assert.ok(worst <= 1e-5, `${name}: logits differ by up to ${worst} (transformers class ${want.model_class})`);
    },
  );
}
