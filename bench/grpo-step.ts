// Seconds per `tsdpo grpo` step on the CPU, sampling included, on the demo model: 16 completions
// (2 prompts x 8) of up to 16 tokens, loss_type grpo, the completion-length reward (as
// bench/grpo_step_trl.py, TRL 1.13 on the same shapes). Usage: node dist/bench/grpo-step.js PROMPTS.jsonl [steps=4]
// [threads=1]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRPO_OPTIONS, type GrpoConfig } from '../src/rl/grpo-config.js';
import { runGrpo } from '../src/rl/grpo-run.js';
import { defaultsOf } from '../src/train/config.js';

const [prompts, steps, threads] = [process.argv[2], Number(process.argv[3] ?? 4), Number(process.argv[4] ?? 1)];
const dir = mkdtempSync(join(tmpdir(), 'tsdpo-bench-grpo-'));
writeFileSync(
  join(dir, 'length.mjs'),
  'export default function length(p, c, extra) { return extra.completion_ids.map((ids) => ids.length / 16); }\n',
);
const cfg: GrpoConfig = {
  ...defaultsOf(GRPO_OPTIONS),
  model_name_or_path: join(import.meta.dirname, '..', '..', 'assets', 'demo-model'),
  dataset: prompts,
  output_dir: join(dir, 'out'),
  max_steps: steps,
  per_device_train_batch_size: 16,
  num_generations: 8,
  max_completion_length: 16,
  learning_rate: 1e-3,
  logging_steps: 1,
  loss_type: 'grpo',
  reward_funcs: [join(dir, 'length.mjs')],
  device: 'cpu',
  threads,
};
const times: number[] = [];
let last = performance.now();
await runGrpo(cfg, {
  quiet: true,
  log: (line) => {
    if (line.startsWith('step=')) {
      const now = performance.now();
      times.push((now - last) / 1000);
      last = now;
    }
  },
});
console.log(
  JSON.stringify({
    engine: 'tsdpo grpo (cpu)',
    threads,
    step_seconds: times.map((t) => Number(t.toFixed(3))),
    median: Number([...times].sort((a, b) => a - b)[times.length >> 1].toFixed(3)),
  }),
);
