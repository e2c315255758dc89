// Dropout masks from the counter-based hash of src/backend/ref/random.ts (Wellons' lowbias32,
// two rounds keyed by the seed): element i's draw depends only on (seed, i), so the mask equals
// the CPU backend's bit for bit.
import type { KernelArgs } from '../../../core/kernels.js';
import { ENTRY, GROUP, WG, grid } from '../wgsl.js';
import { buf, f32Only, type Ctx } from './context.js';

export function dropoutMask(ctx: Ctx, a: KernelArgs['dropoutMask']): void {
  f32Only('dropoutMask', a.out);
  if (!(a.p >= 0 && a.p <= 1)) throw new Error(`dropoutMask: p = ${a.p} is not a probability in [0, 1]`);
  const k = ctx.rt.kernel('dropout_mask', () => ({
    name: 'dropoutMask',
    params: [
      ['n', 'u32'],
      ['seed', 'u32'],
      ['threshold', 'u32'],
      ['scale', 'f32'],
    ],
    buffers: [['out', 'f32', 'read_write']],
    body: `
fn mix32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let i = ${GROUP} * ${WG}u + li;
  if (i >= P.n) { return; }
  let key = mix32(P.seed + 0x9e3779b9u);
  let h = mix32(mix32(i ^ key) + key) >> 8u;
  out[i] = select(0.0, P.scale, h >= P.threshold);
}`,
  }));
  // The comparison is on integers, hash24 >= ceil(p 2^24), as in the reference.
  ctx.rt.run(k, [buf(a.out)], [a.n, a.seed >>> 0, Math.ceil(a.p * 16777216), 1 / (1 - a.p)], grid(a.n));
}
