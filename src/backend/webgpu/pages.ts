// Split tensors (paged.ts): how a tensor above the binding limit is laid out in pages, a page as a
// storage of its own, scratch storages, buffer copies of element ranges across pages, and the
// error for what cannot work on pages.
import type { Storage } from '../../core/backend.js';
import { BYTES } from '../../core/dtype.js';
import type { GpuStorage, Pages } from './storage.js';
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
  // Leading dims of 1 (a matmul's [1, M, N] product) do not count: rows are those of the first longer dim.
  const dims = shape?.slice(
    Math.max(
      0,
      shape.findIndex((d) => d !== 1),
    ),
  );
  if (!dims || dims.length < 2 || dims[0] < 2 || (dtype !== 'f32' && dtype !== 'bf16')) {
    throw new Error(
      `${what}: ${why}; only float32 (and bfloat16) tensors of 2 or more dims are split by rows: use smaller batches or sequences (or --device cpu)`,
    );
  }
  const rowElems = size / dims[0];
  let rows = Math.floor(limit / (rowElems * BYTES[dtype]));
  if (dtype === 'bf16' && (rows * rowElems) % 2 === 1) rows--; // bf16 pages start on a whole u32
  if (rows < 1)
    throw new Error(`${what}: ${why}, and one row of ${rowElems * BYTES[dtype]} bytes is too: use --device cpu`);
  return { pageElems: rows * rowElems, rowElems, count: Math.ceil(dims[0] / rows) };
}

/** A storage over page i alone (shares the buffer; never freed on its own). */
export function page(s: GpuStorage, i: number): GpuStorage {
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
export function temp(ctx: Ctx, like: Storage, n: number): GpuStorage {
  return { backend: like.backend, dtype: 'f32', size: n, refs: 0, buffer: scratch(ctx, n) };
}

export function drop(ctx: Ctx, s: GpuStorage): void {
  release(ctx, s.buffer);
}

export function paged(s: Storage | null | undefined): s is GpuStorage & { pages: Pages } {
  return !!s && typeof s === 'object' && 'pages' in s && (s as GpuStorage).pages !== undefined;
}

export function refuse(name: string, s: GpuStorage, limit: number, why?: string): never {
  throw new Error(
    `webgpu ${name}: a tensor of ${s.size * BYTES[s.dtype]} bytes is split into ${s.pages!.buffers.length} buffers ` +
      `(above maxStorageBufferBindingSize, ${limit} bytes here), and ` +
      (why ??
        `${name} does not take split tensors (matmul, embedding, embeddingGrad, the elementwise kernels, the optimizers and sumSquares do)`) +
      '; use smaller batches or sequences (or --device cpu)',
  );
}

export function isStorage(v: unknown): v is GpuStorage {
  return !!v && typeof v === 'object' && 'buffer' in v && 'dtype' in v;
}

/** The buffer holding element e of s, and e's index in it. */
function locate(s: GpuStorage, e: number): { buffer: GPUBuffer; at: number; left: number } {
  if (!s.pages) return { buffer: s.buffer, at: e, left: s.size - e };
  const i = Math.floor(e / s.pages.pageElems),
    at = e - i * s.pages.pageElems;
  return { buffer: s.pages.buffers[i], at, left: Math.min(s.pages.pageElems, s.size - i * s.pages.pageElems) - at };
}

/** dst[d0 .. d0 + n) = src[s0 .. s0 + n) for 4-byte values, split or not: buffer copies. */
export function copyRange(ctx: Ctx, src: GpuStorage, s0: number, dst: GpuStorage, d0: number, n: number): void {
  for (let e = 0; e < n;) {
    const a = locate(src, s0 + e),
      b = locate(dst, d0 + e);
    const len = Math.min(a.left, b.left, n - e);
    ctx.rt.copy(a.buffer, a.at * 4, b.buffer, b.at * 4, len * 4);
    e += len;
  }
}
