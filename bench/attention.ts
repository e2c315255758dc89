// Benchmark of the fused attention kernels (forward and backward) at GPT-2 small shapes:
// prints one JSON line per (kernel, threads, build). Run: npm run build && node dist/bench/attention.js
//
// FLOP counts are those of non-causal attention, whatever the mask: forward 4 B H T S Dh
// (Q K^T and P V), backward 10 B H T S Dh (Q K^T recomputed, dO V^T, P^T dO, dS^T Q, dS K).
// Causal attention does about half of that work, so its true rate is about half the printed one.
import { availableParallelism } from 'node:os';
import { KernelRuntime } from '../src/backend/cpu/runtime.js';
import { attentionBuffers, time } from './helpers.js';
import { attentionF32, attentionGradF32 } from '../src/backend/cpu/fast/attention.js';

interface Shape {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  Dh: number;
  causal: boolean;
}

function bench(rt: KernelRuntime, shape: Shape): void {
  const { B, T, S, H, Dh } = shape;
  const p = attentionBuffers(rt, shape);
  const args = { ...p, mask: 0, ...shape, scale: 1 / Math.sqrt(Dh) };
  const base = B * H * T * S * Dh;
  const fwd = time(() => attentionF32(rt, args), 5, 40);
  const bwd = time(() => attentionGradF32(rt, args), 5, 40);
  for (const [kernel, t, flops] of [
    ['attention', fwd, 4 * base],
    ['attention_grad', bwd, 10 * base],
  ] as const) {
    console.log(
      JSON.stringify({
        bench: kernel,
        ...shape,
        threads: rt.threads,
        relaxed: rt.relaxed,
        ms: +(t.best * 1e3).toFixed(2),
        median_ms: +(t.median * 1e3).toFixed(2),
        gflops: +(flops / t.best / 1e9).toFixed(2),
        flops: 'non-causal count',
      }),
    );
  }
  console.log(
    JSON.stringify({
      bench: 'attention fwd+bwd',
      ...shape,
      threads: rt.threads,
      relaxed: rt.relaxed,
      ms: +((fwd.best + bwd.best) * 1e3).toFixed(2),
    }),
  );
  for (const ptr of Object.values(p)) rt.free(ptr);
}

const gpt2: Shape = { B: 4, T: 256, S: 256, H: 12, Hkv: 12, Dh: 64, causal: true };
const threadCounts = [...new Set([1, 2, availableParallelism()])];
for (const relaxed of [true, false]) {
  for (const threads of threadCounts) {
    const rt = await KernelRuntime.create({ threads, relaxed });
    bench(rt, gpt2);
    await rt.close();
  }
}
