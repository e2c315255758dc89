// Rotary position embedding in transformers' rotate-half convention, one thread per element of
// x [B, T, H, Dh] with cos, sin [B, T, R/2]: in each head the first R dims rotate in pairs
// (i, i + R/2), the rest are copied; sign -1 applies the inverse rotation (the backward).
import type { KernelArgs } from '../../../core/kernels.js';
import { ENTRY, GROUP, WG, grid } from '../wgsl.js';
import { buf, f32Only, type Ctx } from './context.js';

export function rope(ctx: Ctx, a: KernelArgs['rope']): void {
  f32Only('rope', a.x);
  if (a.R % 2 !== 0 || a.R > a.Dh)
    throw new Error(`rope: rotary dims R = ${a.R} must be even and <= head size ${a.Dh}`);
  const k = ctx.rt.kernel('rope', () => ({
    name: 'rope',
    params: [
      ['n', 'u32'],
      ['H', 'u32'],
      ['Dh', 'u32'],
      ['half', 'u32'],
      ['sign', 'f32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['cosv', 'f32', 'read'],
      ['sinv', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    // o[i] = x[i] c - s x[i + R/2] sin, o[i + R/2] = x[i + R/2] c + s x[i] sin (i < R/2)
    body: `
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let t = ${GROUP} * ${WG}u + li;
  if (t >= P.n) { return; }
  let d = t % P.Dh;
  let bt = t / (P.Dh * P.H);
  let head = t - d;
  if (d >= 2u * P.half) { out[t] = x[t]; return; }
  let i = select(d - P.half, d, d < P.half);
  let c = cosv[bt * P.half + i];
  let s = P.sign * sinv[bt * P.half + i];
  let x1 = x[head + i];
  let x2 = x[head + i + P.half];
  out[t] = select(x2 * c + x1 * s, x1 * c - x2 * s, d < P.half);
}`,
  }));
  const n = a.B * a.T * a.H * a.Dh;
  ctx.rt.run(k, [buf(a.x), buf(a.cos), buf(a.sin), buf(a.out)], [n, a.H, a.Dh, a.R / 2, a.sign], grid(n));
}
