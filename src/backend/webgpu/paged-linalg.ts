// The kernels that read or write a split weight by rows (paged.ts): matmul with a split (or
// bfloat16) B or a split C, embedding from a split (or bfloat16) table and its gradient into a
// split one.
//
// bfloat16 frozen weights (split or not) go through the same kernels: a bf16 storage packs two
// values per u32 (element 2i in the low half), and a matmul widens B a slab of rows at a time into
// f32 scratch (bf16_widen) before the f32 product; embedding unpacks the gathered rows.
import type { KernelArgs, KernelTable } from '../../core/kernels.js';
import { checkIds, type GpuStorage, type Pages } from './storage.js';
import { ENTRY, GROUP, WG, grid } from './wgsl.js';
import type { Ctx } from './kernels/context.js';
import { embeddingGrad as embeddingGradRows } from './kernels/embedding.js';
import { copyRange, drop, page, paged, refuse, temp } from './pages.js';

/** C = op(A) op(B) with a split (or bf16) B, a split C, or both; A is never split. */
export function matmulPaged(ctx: Ctx, inner: KernelTable, a: KernelArgs['matmul']): void {
  const A = a.a as GpuStorage,
    C = a.c as GpuStorage;
  if (paged(A) || A.dtype === 'bf16')
    throw new Error(
      `webgpu matmul: A [${a.transA ? `${a.K}, ${a.M}` : `${a.M}, ${a.K}`}] is ` +
        `${paged(A) ? `split (above maxStorageBufferBindingSize, ${ctx.rt.maxBinding} bytes here)` : 'bfloat16'}; ` +
        'only B (a weight) and C (its gradient) may be: use smaller batches or sequences (or --device cpu)',
    );
  if (C.dtype === 'bf16') throw new Error('webgpu matmul: C is bfloat16 (frozen weights are not written)');
  if (paged(C)) matmulC(ctx, inner, a);
  else matmulB(ctx, inner, a);
}

/**
 * C = op(A) op(B) into a split C [M, N] (a weight's gradient dW = dy^T x): per page of C's rows,
 * those rows of op(A) copied out and multiplied into the page. (A is within one binding, so each
 * page's rows of it are too.)
 */
function matmulC(ctx: Ctx, inner: KernelTable, a: KernelArgs['matmul']): void {
  const c = a.c as GpuStorage & { pages: Pages };
  const { M, N, K, batch } = a;
  if (batch !== 1)
    throw new Error(`webgpu matmul: a split C [${batch}, ${M}, ${N}] works for one product (batch 1), not ${batch}`);
  const pageRows = c.pages.pageElems / N;
  if (!Number.isInteger(pageRows))
    throw new Error(`webgpu matmul: C's pages (${c.pages.pageElems} elements) do not hold whole rows of ${N}`);
  const bSpecial = paged(a.b) || a.b.dtype === 'bf16';
  for (let p = 0; p < c.pages.buffers.length; p++) {
    const r0 = p * pageRows,
      n = Math.min(pageRows, M - r0);
    const ta = temp(ctx, a.a, n * K); // rows r0 .. r0 + n of op(A): (n, K), or (K, n) when transA
    if (a.transA)
      inner.copy({
        src: a.a,
        dst: ta,
        shape: [K, n],
        srcStrides: [M, 1],
        dstStrides: [n, 1],
        srcOffset: r0,
        dstOffset: 0,
      });
    else copyRange(ctx, a.a as GpuStorage, r0 * K, ta, 0, n * K);
    const args = { ...a, a: ta, c: page(c, p), M: n, strideA: n * K, strideC: n * N };
    if (bSpecial) matmulB(ctx, inner, args);
    else inner.matmul(args);
    drop(ctx, ta);
  }
}

/** f32 elements a widened bf16 slab may hold (16 MiB, and within one binding). */
const SLAB_BYTES = 16 << 20;

/**
 * The stored rows of B as f32 storages of whole rows, in order: the pages of a split f32 B as they
 * are; a bf16 B widened a slab at a time (call done() after recording its last use).
 */
function* slabsOf(
  ctx: Ctx,
  b: GpuStorage,
  rowLen: number,
  rows: number,
): Generator<{ r0: number; n: number; s: GpuStorage; done: () => void }> {
  const pageRows = b.pages ? b.pages.pageElems / rowLen : rows;
  if (!Number.isInteger(pageRows))
    throw new Error(`webgpu matmul: B's pages (${b.pages!.pageElems} elements) do not hold whole rows of ${rowLen}`);
  const slabRows =
    b.dtype === 'bf16' ? Math.max(1, Math.floor(Math.min(SLAB_BYTES, ctx.rt.maxBinding) / (4 * rowLen))) : pageRows;
  for (let p = 0, p0 = 0; p0 < rows; p++, p0 += pageRows) {
    const pRows = Math.min(pageRows, rows - p0);
    const buffer = b.pages ? b.pages.buffers[p] : b.buffer;
    if (b.dtype !== 'bf16') {
      yield { r0: p0, n: pRows, s: page(b, p), done: () => {} };
      continue;
    }
    for (let r = 0; r < pRows; r += slabRows) {
      const n = Math.min(slabRows, pRows - r);
      const t = temp(ctx, b, n * rowLen);
      widen(ctx, buffer, r * rowLen, n * rowLen, t.buffer);
      yield { r0: p0 + r, n, s: t, done: () => drop(ctx, t) };
    }
  }
}

/** dst[i] = f32(bf16 element start + i of src), for i < n. */
function widen(ctx: Ctx, src: GPUBuffer, start: number, n: number, dst: GPUBuffer): void {
  const k = ctx.rt.kernel('bf16_widen', () => ({
    name: 'bf16 to f32',
    params: [
      ['n', 'u32'],
      ['start', 'u32'],
    ],
    buffers: [
      ['src', 'u32', 'read'],
      ['dst', 'f32', 'read_write'],
    ],
    body: `
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let t = ${GROUP} * ${WG}u + li;
  if (t >= P.n) { return; }
  let e = P.start + t;
  dst[t] = bitcast<f32>(select(src[e >> 1u] << 16u, src[e >> 1u] & 0xffff0000u, (e & 1u) == 1u));
}`,
  }));
  ctx.rt.run(k, [src, dst], [n, start], grid(n));
}

/** C = op(A) op(B) with B split by its stored rows, or bf16, or both. */
function matmulB(ctx: Ctx, inner: KernelTable, a: KernelArgs['matmul']): void {
  const b = a.b as GpuStorage;
  const { M, N, K, batch } = a;
  if ((batch > 1 && a.strideB !== 0) || a.strideC !== M * N) {
    throw new Error(
      `webgpu matmul: a split or bf16 B [${a.transB ? `${N}, ${K}` : `${K}, ${N}`}] ` +
        `works as one matrix shared by the batch (strideB ${a.strideB}, batch ${batch})`,
    );
  }
  if (K === 0) throw new Error('webgpu matmul: K = 0 with a split or bf16 B');
  const rowLen = a.transB ? K : N,
    rows = a.transB ? N : K;
  for (const { r0, n, s, done } of slabsOf(ctx, b, rowLen, rows)) {
    if (a.transB) {
      // Columns r0 .. r0 + n of C: their own product, then copied (or added) into place.
      const t = temp(ctx, a.c, batch * M * n);
      inner.matmul({ ...a, b: s, c: t, N: n, accumulate: false, strideB: 0, strideC: M * n });
      if (a.accumulate) {
        const cur = temp(ctx, a.c, batch * M * n);
        inner.copy({
          src: a.c,
          dst: cur,
          shape: [batch * M, n],
          srcStrides: [N, 1],
          dstStrides: [n, 1],
          srcOffset: r0,
          dstOffset: 0,
        });
        inner.binary({ op: 'add', a: cur, b: t, out: t, shape: [batch * M * n], aStrides: [1], bStrides: [1] });
        drop(ctx, cur);
      }
      inner.copy({
        src: t,
        dst: a.c,
        shape: [batch * M, n],
        srcStrides: [n, 1],
        dstStrides: [N, 1],
        srcOffset: 0,
        dstOffset: r0,
      });
      drop(ctx, t);
    } else if (r0 === 0 && n === K) {
      inner.matmul({ ...a, b: s, strideB: 0 }); // one slab: the product as it is
    } else {
      // K range r0 .. r0 + n: op(A)'s columns copied out, the products accumulated into C.
      const t = temp(ctx, a.a, batch * M * n);
      const sa = a.strideA;
      if (a.transA)
        inner.copy({
          src: a.a,
          dst: t,
          shape: [batch, n, M],
          srcStrides: [sa, M, 1],
          dstStrides: [n * M, M, 1],
          srcOffset: r0 * M,
          dstOffset: 0,
        });
      else
        inner.copy({
          src: a.a,
          dst: t,
          shape: [batch, M, n],
          srcStrides: [sa, K, 1],
          dstStrides: [M * n, n, 1],
          srcOffset: r0,
          dstOffset: 0,
        });
      inner.matmul({ ...a, a: t, b: s, K: n, accumulate: a.accumulate || r0 > 0, strideA: M * n, strideB: 0 });
      drop(ctx, t);
    }
    done();
  }
}

/** out[r] = weight[ids[r]] with the table split by rows and / or bf16: one masked gather per page. */
export function embedding(ctx: Ctx, inner: KernelTable, a: KernelArgs['embedding']): void {
  checkIds('embedding', a.ids, a.N, a.V, false, 'id');
  const w = a.weight as GpuStorage,
    bf = w.dtype === 'bf16';
  const buffers = w.pages?.buffers ?? [w.buffer],
    per = w.pages ? w.pages.pageElems / a.D : a.V;
  inner.fill({ out: a.out, value: 0 }); // rows of ids outside [0, V) (made on the device) stay zero
  const read = bf
    ? 'bitcast<f32>(select(weight[e >> 1u] << 16u, weight[e >> 1u] & 0xffff0000u, (e & 1u) == 1u))'
    : 'weight[e]';
  const k = ctx.rt.kernel(bf ? 'embedding_page_bf16' : 'embedding_page', () => ({
    name: `embedding (${bf ? 'bf16' : 'split'} table)`,
    params: [
      ['n', 'u32'],
      ['D', 'u32'],
      ['r0', 'u32'],
      ['rows', 'u32'],
    ],
    buffers: [
      ['weight', bf ? 'u32' : 'f32', 'read'],
      ['ids', 'i32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    body: `
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let t = ${GROUP} * ${WG}u + li;
  if (t >= P.n) { return; }
  let id = ids[t / P.D];
  if (id >= i32(P.r0) && id < i32(P.r0 + P.rows)) {
    let e = u32(id - i32(P.r0)) * P.D + t % P.D;
    out[t] = ${read};
  }
}`,
  }));
  const n = a.N * a.D;
  for (let i = 0; i < buffers.length; i++) {
    ctx.rt.run(
      k,
      [buffers[i], (a.ids as GpuStorage).buffer, (a.out as GpuStorage).buffer],
      [n, a.D, i * per, Math.min(per, a.V - i * per)],
      grid(n),
    );
  }
}

/** dweight[ids[r]] += dy[r] into a split table: the scatter-add once per page, for the ids in its rows. */
export function embeddingGradPaged(ctx: Ctx, a: KernelArgs['embeddingGrad']): void {
  const w = a.dweight as GpuStorage;
  if (!paged(w) || paged(a.dy) || paged(a.ids))
    refuse(
      'embeddingGrad',
      [a.dy, a.ids, w].find(paged) as GpuStorage,
      ctx.rt.maxBinding,
      'only its dweight may be split',
    );
  const per = w.pages.pageElems / a.D;
  if (!Number.isInteger(per))
    throw new Error(
      `webgpu embeddingGrad: dweight's pages (${w.pages.pageElems} elements) do not hold whole rows of ${a.D}`,
    );
  for (let i = 0; i < w.pages.buffers.length; i++)
    embeddingGradRows(ctx, { ...a, dweight: page(w, i) }, i * per, Math.min(per, a.V - i * per));
}
