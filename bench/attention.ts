// Benchmark of the fused attention kernels (forward and backward) at GPT-2 small shapes:
// prints one JSON line per (kernel, threads, build). Run: npm run build && node dist/bench/attention.js
//
// FLOP counts are those of non-causal attention, whatever the mask: forward 4 B H T S Dh
// (Q K^T and P V), backward 10 B H T S Dh (Q K^T recomputed, dO V^T, P^T dO, dS^T Q, dS K).
// Causal attention does about half of that work, so its true rate is about half the printed one.
import { availableParallelism } from 'node:os';
import { KernelRuntime } from '../src/backend/cpu/runtime.js';
import { time } from './timing.js';
import { attentionF32, attentionGradF32 } from '../src/backend/cpu/fast/attention.js';


function randomFill(rt: KernelRuntime, ptr: number, n: number, amp: number): void {
  const f32 = rt.heap().f32;
  for (let i = 0; i < n; i++) f32[(ptr >> 2) + i] = (Math.random() * 2 - 1) * amp;
}

interface Shape { B: number; T: number; S: number; H: number; Hkv: number; Dh: number; causal: boolean }

function bench(rt: KernelRuntime, shape: Shape): void {
  const { B, T, S, H, Hkv, Dh } = shape;
  const nq = B * T * H * Dh, nk = B * S * Hkv * Dh;
  const p = {
    q: rt.malloc(nq * 4), k: rt.malloc(nk * 4), v: rt.malloc(nk * 4), out: rt.malloc(nq * 4),
    lse: rt.malloc(B * H * T * 4), dout: rt.malloc(nq * 4), dq: rt.malloc(nq * 4), dk: rt.malloc(nk * 4), dv: rt.malloc(nk * 4),
  };
  randomFill(rt, p.q, nq, 2);
  randomFill(rt, p.k, nk, 2);
  randomFill(rt, p.v, nk, 1);
  randomFill(rt, p.dout, nq, 1);
  const args = { ...p, mask: 0, ...shape, scale: 1 / Math.sqrt(Dh) };
  const base = B * H * T * S * Dh;
  const fwd = time(() => attentionF32(rt, args), 5, 40);
  const bwd = time(() => attentionGradF32(rt, args), 5, 40);
  for (const [kernel, t, flops] of [['attention', fwd, 4 * base], ['attention_grad', bwd, 10 * base]] as const) {
    console.log(JSON.stringify({
      bench: kernel, ...shape, threads: rt.threads, relaxed: rt.relaxed,
      ms: +(t.best * 1e3).toFixed(2), median_ms: +(t.median * 1e3).toFixed(2),
      gflops: +(flops / t.best / 1e9).toFixed(2), flops: 'non-causal count',
    }));
  }
  console.log(JSON.stringify({
    bench: 'attention fwd+bwd', ...shape, threads: rt.threads, relaxed: rt.relaxed, ms: +((fwd.best + bwd.best) * 1e3).toFixed(2),
  }));
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
