// Rollout throughput of tsdpo's batched KV-cache sampler (src/eval/generate.ts), the sampling step of
// `tsdpo grpo` / `tsdpo rloo`, on the demo model: B prompts x N new tokens sampled at temperature 1,
// no early stop at EOS. Compare with bench/rollout_hf.py (transformers' generate on the same model).
// Usage: node dist/bench/rollout.js [B=64] [N=48] [threads=1]
import { join } from 'node:path';
import { Rng } from '../src/core/random.js';
import { initEngine } from '../src/engine.js';
import { generate } from '../src/eval/generate.js';
import { loadModel } from '../src/models/load.js';

const [B, N, threads] = [Number(process.argv[2] ?? 64), Number(process.argv[3] ?? 48), Number(process.argv[4] ?? 1)];
await initEngine({ device: 'cpu', threads });
const model = loadModel(join(import.meta.dirname, '..', '..', 'assets', 'demo-model'));
const prompts = Array.from({ length: B }, (_, b) => Array.from({ length: 8 }, (_, t) => (b * 31 + t * 7) % 2000));
await generate(model, prompts.slice(0, 4), { maxNewTokens: 4, doSample: true, rng: new Rng(0) }); // warm-up
const t0 = performance.now();
const g = await generate(model, prompts, { maxNewTokens: N, doSample: true, temperature: 1, rng: new Rng(1) });
const secs = (performance.now() - t0) / 1000;
const tokens = g.tokens.reduce((a, t) => a + t.length, 0);
console.log(
  JSON.stringify({
    engine: 'tsdpo generate (cpu)',
    B,
    N,
    threads,
    tokens,
    seconds: Number(secs.toFixed(3)),
    tokens_per_second: Math.round(tokens / secs),
  }),
);
