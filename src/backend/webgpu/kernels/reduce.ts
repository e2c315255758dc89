// Reductions: the middle axis of an [outer, red, inner] view (sum or max), and the sum of squares
// for gradient clipping, accumulated into a device buffer (no readback). A long reduced axis is
// split into chunks reduced in parallel, then the chunk results are reduced (two dispatches).
import type { KernelArgs } from '../../../core/kernels.js';
import { ENTRY, GROUP, REDUCE, SPECIAL, WG, grid } from '../wgsl.js';
import { buf, f32Only, release, scratch, type Ctx } from './context.js';

type Op = 'sum' | 'max';
const NO_INDEX = 0xffffffff;

/**
 * inner == 1: one workgroup per (row o, chunk c) reduces x[o, c R .. min(red, (c + 1) R)),
 * squaring first when P.square is 1. Writes out[o C + c], or adds into out[P.index] when
 * P.index is set (a single result).
 */
function rowsKernel(ctx: Ctx, op: Op) {
  return ctx.rt.kernel(`reduce_rows_${op}`, () => ({
    name: `reduce ${op} (rows)`,
    params: [
      ['outer', 'u32'],
      ['red', 'u32'],
      ['chunk', 'u32'],
      ['chunks', 'u32'],
      ['square', 'u32'],
      ['index', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    body: `${SPECIAL}${REDUCE}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let g = ${GROUP};
  let valid = g < P.outer * P.chunks;
  let o = g / P.chunks;
  let c = g % P.chunks;
  let lo = c * P.chunk;
  let hi = min(P.red, lo + P.chunk);
  var acc = ${op === 'sum' ? '0.0' : 'neg_inf()'};
  if (valid) {
    for (var r = lo + li; r < hi; r += ${WG}u) {
      var v = x[o * P.red + r];
      if (P.square == 1u) { v = v * v; }
      acc = ${op === 'sum' ? 'acc + v' : 'maxn(acc, v)'};
    }
  }
  let total = ${op === 'sum' ? 'wg_sum' : 'wg_max'}(acc, li);
  if (valid && li == 0u) {
    if (P.index == ${NO_INDEX}u) { out[g] = total; } else { out[P.index] = out[P.index] + total; }
  }
}`,
  }));
}

/** inner > 1: one thread per (o, c, i) reduces x[o, c R .. , i] into out[(o C + c) inner + i]. */
function colsKernel(ctx: Ctx, op: Op) {
  return ctx.rt.kernel(`reduce_cols_${op}`, () => ({
    name: `reduce ${op} (columns)`,
    params: [
      ['outer', 'u32'],
      ['red', 'u32'],
      ['inner', 'u32'],
      ['chunk', 'u32'],
      ['chunks', 'u32'],
      ['n', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    body: `${SPECIAL}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let t = ${GROUP} * ${WG}u + li;
  if (t >= P.n) { return; }
  let i = t % P.inner;
  let oc = t / P.inner;
  let c = oc % P.chunks;
  let o = oc / P.chunks;
  let lo = c * P.chunk;
  let hi = min(P.red, lo + P.chunk);
  var acc = ${op === 'sum' ? '0.0' : 'neg_inf()'};
  for (var r = lo; r < hi; r++) {
    let v = x[(o * P.red + r) * P.inner + i];
    acc = ${op === 'sum' ? 'acc + v' : 'maxn(acc, v)'};
  }
  out[t] = acc;
}`,
  }));
}

function rows(
  ctx: Ctx,
  op: Op,
  x: GPUBuffer,
  out: GPUBuffer,
  outer: number,
  red: number,
  square: boolean,
  index = NO_INDEX,
): void {
  const k = rowsKernel(ctx, op);
  // Split long rows when there are too few of them to fill the GPU.
  if (red > 4096 && outer < 2048) {
    const chunk = Math.ceil(red / Math.min(1024, Math.ceil(red / 2048)));
    const chunks = Math.ceil(red / chunk);
    const part = scratch(ctx, outer * chunks);
    ctx.rt.run(k, [x, part], [outer, red, chunk, chunks, square ? 1 : 0, NO_INDEX], grid(outer * chunks, 1));
    ctx.rt.run(k, [part, out], [outer, chunks, chunks, 1, 0, index], grid(outer, 1));
    release(ctx, part);
    return;
  }
  ctx.rt.run(k, [x, out], [outer, red, red, 1, square ? 1 : 0, index], grid(outer, 1));
}

export function reduce(ctx: Ctx, a: KernelArgs['reduce']): void {
  f32Only(a.op, a.x);
  reduceBuffers(ctx, a.op, buf(a.x), buf(a.out), a.outer, a.red, a.inner);
}

/** out[o, i] = op over r of x[o, r, i], for buffers (also used by the norm weight gradients). */
export function reduceBuffers(
  ctx: Ctx,
  op: Op,
  x: GPUBuffer,
  out: GPUBuffer,
  outer: number,
  red: number,
  inner: number,
): void {
  if (outer * inner === 0) return;
  if (inner === 1) {
    rows(ctx, op, x, out, outer, red, false);
    return;
  }
  const k = colsKernel(ctx, op);
  const work = outer * inner;
  if (red >= 64 && work < 65536) {
    const chunk = Math.ceil(red / Math.min(Math.ceil(red / 16), Math.ceil(262144 / work)));
    const chunks = Math.ceil(red / chunk);
    const part = scratch(ctx, outer * chunks * inner);
    ctx.rt.run(k, [x, part], [outer, red, inner, chunk, chunks, outer * chunks * inner], grid(outer * chunks * inner));
    ctx.rt.run(k, [part, out], [outer, chunks, inner, chunks, 1, work], grid(work));
    release(ctx, part);
    return;
  }
  ctx.rt.run(k, [x, out], [outer, red, inner, red, 1, work], grid(work));
}

/** out[index] += sum x^2, all on the device. */
export function sumSquares(ctx: Ctx, a: KernelArgs['sumSquares']): void {
  f32Only('sumSquares', a.x, a.out);
  if (a.n === 0) return;
  rows(ctx, 'sum', buf(a.x), buf(a.out), 1, a.n, true, a.index);
}
