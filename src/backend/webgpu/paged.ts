// WebGPU tensors larger than one storage binding (maxStorageBufferBindingSize, 128 MiB unless an
// adapter grants more: a 151,936 x 896 embedding is 545 MB in f32). Such a tensor is split by
// rows of its leading dim into pages, one buffer each (storage.ts Pages). The kernels that the
// frozen and tied weights need read pages: embedding (a gather per page), and matmul with a
// split B (x W^T: a product per page of output columns, copied into place; dy W: a product per
// page of K, accumulated); fill, and host reads and writes. Any other kernel given a split tensor
// throws, naming the sizes and the limit.
//
// bfloat16 frozen weights (split or not) go through the same two kernels: a bf16 storage packs two
// values per u32 (element 2i in the low half), and a matmul widens B a slab of rows at a time into
// f32 scratch (bf16_widen) before the f32 product; embedding unpacks the gathered rows.
import type { Storage } from '../../core/backend.js';
import type { KernelArgs, KernelName, KernelTable } from '../../core/kernels.js';
import { BYTES } from '../../core/dtype.js';
import { checkIds, type GpuStorage, type Pages } from './storage.js';
import { ENTRY, GROUP, WG, grid } from './wgsl.js';
import { release, scratch, type Ctx } from './kernels/context.js';

/** How a tensor of `size` elements and `shape` splits under `limit` bytes per binding, or why it cannot. */
export function pageLayout(
  what: string,
  dtype: keyof typeof BYTES,
  size: number,
  shape: readonly number[] | undefined,
  limit: number,
  adapter: string,
): { pageElems: number; rowElems: number; count: number } {
  const bytes = size * BYTES[dtype];
  const why =
    `a ${dtype} tensor${shape ? ` [${shape.join(', ')}]` : ''} of ${bytes} bytes is above this device's ` +
    `maxStorageBufferBindingSize of ${limit} bytes (${adapter})`;
  if (!shape || shape.length < 2 || shape[0] < 2 || (dtype !== 'f32' && dtype !== 'bf16')) {
    throw new Error(
      `${what}: ${why}; only float32 (and bfloat16) tensors of 2 or more dims are split by rows: use smaller batches or sequences (or --device cpu)`,
    );
  }
  const rowElems = size / shape[0];
  let rows = Math.floor(limit / (rowElems * BYTES[dtype]));
  if (dtype === 'bf16' && (rows * rowElems) % 2 === 1) rows--; // bf16 pages start on a whole u32
  if (rows < 1)
    throw new Error(`${what}: ${why}, and one row of ${rowElems * BYTES[dtype]} bytes is too: use --device cpu`);
  return { pageElems: rows * rowElems, rowElems, count: Math.ceil(shape[0] / rows) };
}

/** A storage over page i alone (shares the buffer; never freed on its own). */
function page(s: GpuStorage, i: number): GpuStorage {
  const p = s.pages!;
  return {
    backend: s.backend,
    dtype: s.dtype,
    size: Math.min(p.pageElems, s.size - i * p.pageElems),
    refs: 0,
    buffer: p.buffers[i],
  };
}

/** A scratch storage of n f32 values; give it back with `drop`. */
function temp(ctx: Ctx, like: Storage, n: number): GpuStorage {
  return { backend: like.backend, dtype: 'f32', size: n, refs: 0, buffer: scratch(ctx, n) };
}

function drop(ctx: Ctx, s: GpuStorage): void {
  release(ctx, s.buffer);
}

function paged(s: Storage | null | undefined): s is GpuStorage & { pages: Pages } {
  return !!s && typeof s === 'object' && 'pages' in s && (s as GpuStorage).pages !== undefined;
}

function refuse(name: string, s: GpuStorage, limit: number): never {
  throw new Error(
    `webgpu ${name}: a tensor of ${s.size * BYTES[s.dtype]} bytes is split into ${s.pages!.buffers.length} buffers ` +
      `(above maxStorageBufferBindingSize, ${limit} bytes here), and ${name} reads split tensors only as a matmul's B or an embedding table; ` +
      'use smaller batches or sequences (or --device cpu)',
  );
}

/** The kernel table with split-tensor and bf16 support wrapped around `inner`. */
export function pagedKernels(ctx: Ctx, inner: KernelTable): KernelTable {
  const limit = ctx.rt.maxBinding;
  const out: Record<string, (a: never) => void> = {};
  for (const [name, fn] of Object.entries(inner) as [KernelName, (a: never) => void][]) {
    out[name] = (a: never) => {
      const args = a as Record<string, unknown>;
      let split: GpuStorage | null = null,
        half: GpuStorage | null = null;
      for (const v of Object.values(args)) {
        if (!isStorage(v)) continue;
        if (v.dtype === 'bf16') half = v;
        if (paged(v)) split = v;
      }
      if (split === null && half === null) return fn(a);
      const special = (x: unknown): boolean => isStorage(x) && (paged(x) || x.dtype === 'bf16');
      if (name === 'matmul' && special(args.b) && !special(args.a) && !special(args.c))
        return matmulB(ctx, inner, a as KernelArgs['matmul']);
      if (name === 'embedding' && special(args.weight) && !special(args.out))
        return embedding(ctx, inner, a as KernelArgs['embedding']);
      if (name === 'fill' && half === null) {
        const s = args.out as GpuStorage;
        for (let i = 0; i < s.pages!.buffers.length; i++) inner.fill({ ...(a as KernelArgs['fill']), out: page(s, i) });
        return;
      }
      if (half !== null)
        throw new Error(
          `webgpu ${name}: a bfloat16 tensor of ${half.size} elements is a frozen weight, which only matmul (as B) and embedding read`,
        );
      refuse(name, split!, limit);
    };
  }
  return out as unknown as KernelTable;
}

function isStorage(v: unknown): v is GpuStorage {
  return !!v && typeof v === 'object' && 'buffer' in v && 'dtype' in v;
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
      `webgpu matmul: a split or bf16 B [${a.transB ? `${N}, ${K}` : `${K}, ${N}`}] works as one matrix shared by the batch (strideB ${a.strideB}, batch ${batch})`,
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
function embedding(ctx: Ctx, inner: KernelTable, a: KernelArgs['embedding']): void {
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
