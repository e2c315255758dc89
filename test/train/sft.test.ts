// SFT end to end: cross-entropy on completions falls; the output is a loadable model.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { COMMON_OPTIONS, defaultsOf, SFT_OPTIONS, type SftConfig } from '../../src/train/config.js';
import { runSft } from '../../src/train/run.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tempRoot, tinyModel } from './tiny.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

test('SFT on prompt/completion data: completion loss falls', async () => {
  const root = tempRoot();
  const model = await tinyModel(root, 7);
  const data = join(root, 'sft.jsonl');
  writeFileSync(
    data,
    Array.from({ length: 16 }, (_, i) =>
      JSON.stringify({ prompt: `Review ${i % 4}:`, completion: ' a fine film.' }),
    ).join('\n'),
  );
  const cfg = {
    ...defaultsOf({ ...COMMON_OPTIONS, ...SFT_OPTIONS }),
    device: 'cpu',
    model_name_or_path: model,
    dataset: data,
    output_dir: join(root, 'out'),
    learning_rate: 1e-2,
    max_steps: 30,
    per_device_train_batch_size: 4,
    logging_steps: 1,
    save_steps: 0,
  } as SftConfig;
  await runSft(cfg, { quiet: true, log: () => {} });
  const m = readMetrics(cfg.output_dir).filter((l) => 'loss' in l);
  assert.ok(m[0].loss > 5, `initial loss ${m[0].loss} is about ln(vocab)`);
  assert.ok(m[m.length - 1].loss < m[0].loss / 2, `loss ${m[0].loss} -> ${m[m.length - 1].loss}`);
});
