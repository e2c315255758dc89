// A GRPO / RLOO run on fixed completions for the chunked-head tests: the tiny GPT-2 of
// test/train/tiny.ts (V = 2048), 4 prompts x 4 completions of 10 to 16 tokens, the idsum reward,
// temperature 0.7, beta 0.1, num_iterations 2, SGD. Run as a script (node fixed-grpo.js <method>
// <root> <out> <device>) it trains in a process of its own, so that a test can set the WebGPU
// binding limit (TSDPO_WEBGPU_MAX_BINDING) of that process; it writes out/result.json (the
// log-probs and the head's peak logits bytes).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../../src/engine.js';
import { GRPO_OPTIONS, RLOO_OPTIONS, type GrpoConfig, type RlooConfig } from '../../src/rl/grpo-config.js';
import { runGrpo, runRloo } from '../../src/rl/grpo-run.js';
import { headMemory } from '../../src/train/chunked-head.js';
import { defaultsOf } from '../../src/train/config.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tinyModel } from '../train/tiny.js';

/** The tiny GPT-2's vocabulary; its EOS is the last id. */
export const V = 2048,
  EOS = 2047;
/** Completions per prompt, rows per micro-batch (two prompts' groups) and the longest completion. */
export const G = 4,
  BS = 8,
  TC = 16;

/** Completions of prompt p: 10 to 16 tokens (every batch of two prompts has a 16-token one), half ending with EOS. */
export const completions = (p: number): number[][] =>
  Array.from({ length: G }, (_, g) => {
    const n = 10 + ((p * 3 + g * 2) % 7);
    const ids = Array.from({ length: n }, (_, t) => (p * 577 + g * 131 + t * 389) % (V - 1));
    if (g % 2 === 0) ids[n - 1] = EOS;
    return ids;
  });

/** Writes the model, the prompts and the reward module under root (the engine must be initialised). */
export async function writeFixture(root: string): Promise<void> {
  await tinyModel(root, 1);
  const prompts = ['The movie was', 'This film', 'The plot', 'Acting was'];
  writeFileSync(join(root, 'prompts.jsonl'), prompts.map((prompt) => JSON.stringify({ prompt })).join('\n'));
  writeFileSync(
    join(root, 'idsum.mjs'),
    'export default function idsum(prompts, completions, extra) { return ' +
      'extra.completion_ids.map((ids) => (ids.reduce((a, b) => a + b, 0) % 13) / 13); }\n',
  );
}

/**
 * Trains 3 steps on the fixture in root into out; the metrics lines and the per-token log-probs of each training
 * forward.
 */
export async function runFixed(
  method: 'grpo' | 'rloo',
  root: string,
  out: string,
  o: { device?: string; headChunkRows?: number } = {},
): Promise<{ metrics: Record<string, number>[]; logps: number[][] }> {
  const cfg = {
    ...defaultsOf(method === 'grpo' ? GRPO_OPTIONS : RLOO_OPTIONS),
    model_name_or_path: join(root, 'model'),
    dataset: join(root, 'prompts.jsonl'),
    reward_funcs: [join(root, 'idsum.mjs')],
    output_dir: out,
    device: o.device ?? 'cpu',
    threads: 1,
    optim: 'sgd',
    learning_rate: 0.5,
    max_steps: 3,
    per_device_train_batch_size: BS,
    num_generations: G,
    max_completion_length: TC,
    num_iterations: 2,
    temperature: 0.7,
    beta: 0.1,
    logging_steps: 1,
    save_steps: 0,
    seed: 42,
  };
  const rollout = async (_ids: number[][], promptIndex: number[]): Promise<number[][]> => {
    const seen = new Map<number, number>();
    return promptIndex.map((p) => {
      const k = seen.get(p) ?? 0;
      seen.set(p, k + 1);
      return completions(p)[k];
    });
  };
  const logps: number[][] = [];
  const opts = {
    quiet: true,
    log: () => {},
    rollout,
    headChunkRows: o.headChunkRows,
    onMicro: (x: { logps: number[][] }) => logps.push(...x.logps),
  };
  await (method === 'grpo' ? runGrpo(cfg as GrpoConfig, opts) : runRloo(cfg as RlooConfig, opts));
  return { metrics: readMetrics(out), logps };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [method, root, out, device] = process.argv.slice(2);
  await initEngine({ device: 'cpu', threads: 1 });
  headMemory.peakBytes = 0;
  const r = await runFixed(method as 'grpo' | 'rloo', root, out, { device });
  writeFileSync(join(out, 'result.json'), JSON.stringify({ logps: r.logps, headPeakBytes: headMemory.peakBytes }));
}
