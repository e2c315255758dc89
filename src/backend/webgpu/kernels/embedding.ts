// Embedding lookup (a row gather) and its gradient. The gradient adds rows of dy into rows of
// dweight that repeated ids share; WGSL has no float atomics, so when the ids are known on the
// host (the usual case: token ids written from the host) the host groups the rows by id and
// each thread sums one (id, column) pair over its rows, in row order: deterministic and fully
// parallel. Ids made on the device fall back to one thread per column looping over all rows.
import type { KernelArgs } from '../../../core/kernels.js';
import { checkIds, type GpuStorage } from '../storage.js';
import { ENTRY, GROUP, WG, grid } from '../wgsl.js';
import { buf, f32Only, release, scratch, type Ctx } from './context.js';

export function embedding(ctx: Ctx, a: KernelArgs['embedding']): void {
  f32Only('embedding', a.weight);
  checkIds('embedding', a.ids, a.N, a.V, false, 'id');
  const k = ctx.rt.kernel('embedding', () => ({
    name: 'embedding',
    params: [
      ['n', 'u32'],
      ['D', 'u32'],
      ['V', 'u32'],
    ],
    buffers: [
      ['weight', 'f32', 'read'],
      ['ids', 'i32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    // An id outside [0, V) (only possible for ids made on the device) gives a zero row.
    body: `
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let t = ${GROUP} * ${WG}u + li;
  if (t >= P.n) { return; }
  let r = t / P.D;
  let j = t % P.D;
  let id = ids[r];
  out[t] = select(0.0, weight[u32(clamp(id, 0, i32(P.V) - 1)) * P.D + j], id >= 0 && id < i32(P.V));
}`,
  }));
  const n = a.N * a.D;
  ctx.rt.run(k, [buf(a.weight), buf(a.ids), buf(a.out)], [n, a.D, a.V], grid(n));
}

/** [U ids, U + 1 segment starts, N rows grouped by id (ascending rows within an id)]. */
function segments(ids: Int32Array, N: number): { meta: Int32Array; U: number } {
  const order = Array.from({ length: N }, (_, r) => r).sort((x, y) => ids[x] - ids[y] || x - y);
  const uniq: number[] = [],
    starts: number[] = [];
  order.forEach((r, p) => {
    if (p === 0 || ids[r] !== ids[order[p - 1]]) {
      uniq.push(ids[r]);
      starts.push(p);
    }
  });
  starts.push(N);
  const U = uniq.length;
  const meta = new Int32Array(2 * U + 1 + N);
  meta.set(uniq, 0);
  meta.set(starts, U);
  meta.set(order, 2 * U + 1);
  return { meta, U };
}

/**
 * dweight[ids[r]] += dy[r]. A split dweight (paged.ts) calls this once per page, with `dweight`
 * that page and `r0`, `rows` its rows: ids outside [r0, r0 + rows) are then another page's.
 */
export function embeddingGrad(ctx: Ctx, a: KernelArgs['embeddingGrad'], r0 = 0, rows = a.V): void {
  f32Only('embeddingGrad', a.dy);
  checkIds('embeddingGrad', a.ids, a.N, a.V, false, 'id');
  if (a.N === 0 || a.D === 0) return;
  const host = (a.ids as GpuStorage).ids?.host;
  if (host && host.length >= a.N) {
    const { meta, U } = segments(host, a.N);
    const k = ctx.rt.kernel('embedding_grad_segments', () => ({
      name: 'embedding backward',
      params: [
        ['n', 'u32'],
        ['D', 'u32'],
        ['U', 'u32'],
        ['r0', 'u32'],
        ['rows', 'u32'],
      ],
      buffers: [
        ['dy', 'f32', 'read'],
        ['segs', 'i32', 'read'],
        ['dw', 'f32', 'read_write'],
      ],
      body: `
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let t = ${GROUP} * ${WG}u + li;
  if (t >= P.n) { return; }
  let u = t / P.D;
  let j = t % P.D;
  let id = u32(segs[u]);
  if (id < P.r0 || id >= P.r0 + P.rows) { return; }
  let lo = u32(segs[P.U + u]);
  let hi = u32(segs[P.U + u + 1u]);
  var acc = 0.0;
  for (var p = lo; p < hi; p++) {
    acc += dy[u32(segs[2u * P.U + 1u + p]) * P.D + j];
  }
  dw[(id - P.r0) * P.D + j] += acc;
}`,
    }));
    const m = scratch(ctx, meta.length);
    ctx.rt.upload(m, 0, meta);
    ctx.rt.run(k, [buf(a.dy), m, buf(a.dweight)], [U * a.D, a.D, U, r0, rows], grid(U * a.D));
    release(ctx, m);
    return;
  }
  const k = ctx.rt.kernel('embedding_grad_columns', () => ({
    name: 'embedding backward (device ids)',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
      ['r0', 'i32'],
      ['rows', 'i32'],
    ],
    buffers: [
      ['dy', 'f32', 'read'],
      ['ids', 'i32', 'read'],
      ['dw', 'f32', 'read_write'],
    ],
    // One thread per column walks all rows in order; ids outside [r0, r0 + rows) (all of [0, V)
    // unless the table is split) are skipped.
    body: `
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let j = ${GROUP} * ${WG}u + li;
  if (j >= P.D) { return; }
  for (var r = 0u; r < P.N; r++) {
    let id = ids[r];
    if (id >= P.r0 && id < P.r0 + P.rows) { dw[u32(id - P.r0) * P.D + j] += dy[r * P.D + j]; }
  }
}`,
  }));
  ctx.rt.run(k, [buf(a.dy), buf(a.ids), buf(a.dweight)], [a.N, a.D, r0, rows], grid(a.D));
}
