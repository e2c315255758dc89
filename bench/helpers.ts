// What the kernel benchmarks share: a timer, random buffers in a runtime's memory, and the
// buffers of one fused attention call.
import type { KernelRuntime } from '../src/backend/cpu/runtime.js';

/** Best and median seconds of `runs` calls after `warmup` calls. */
export function time(fn: () => void, warmup: number, runs: number): { best: number; median: number } {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  t.sort((x, y) => x - y);
  return { best: t[0], median: t[t.length >> 1] };
}

/** n float32 values uniform in [-amp, amp) from byte address ptr. */
export function randomFill(rt: KernelRuntime, ptr: number, n: number, amp = 1): void {
  const f32 = rt.heap().f32;
  for (let i = 0; i < n; i++) f32[(ptr >> 2) + i] = (Math.random() * 2 - 1) * amp;
}

export interface AttentionShape {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  Dh: number;
}

/**
 * Addresses of q, k, v, dout (random; q and k in [-2, 2)) and of the outputs of a fused attention call; free them with
 * rt.free.
 */
export function attentionBuffers(rt: KernelRuntime, { B, T, S, H, Hkv, Dh }: AttentionShape) {
  const nq = B * T * H * Dh,
    nk = B * S * Hkv * Dh;
  const p = {
    q: rt.malloc(nq * 4),
    k: rt.malloc(nk * 4),
    v: rt.malloc(nk * 4),
    out: rt.malloc(nq * 4),
    lse: rt.malloc(B * H * T * 4),
    dout: rt.malloc(nq * 4),
    dq: rt.malloc(nq * 4),
    dk: rt.malloc(nk * 4),
    dv: rt.malloc(nk * 4),
  };
  randomFill(rt, p.q, nq, 2);
  randomFill(rt, p.k, nk, 2);
  randomFill(rt, p.v, nk);
  randomFill(rt, p.dout, nq);
  return p;
}
