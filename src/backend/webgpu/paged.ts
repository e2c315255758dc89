// WebGPU tensors larger than one storage binding (maxStorageBufferBindingSize, 128 MiB unless an
// adapter grants more: a 151,936 x 896 embedding is 545 MB in f32). Such a tensor is split by
// rows of its leading dim into pages, one buffer each (storage.ts Pages). The kernels that the
// frozen and tied weights need read pages: embedding (a gather per page), and matmul with a
// split B (x W^T: a product per page of output columns, copied into place; dy W: a product per
// page of K, accumulated); fill, and host reads and writes. Any other kernel given a split tensor
// throws, naming the sizes and the limit.
import type { Storage } from '../../core/backend.js';
import type { KernelArgs, KernelName, KernelTable } from '../../core/kernels.js';
import { BYTES } from '../../core/dtype.js';
import { checkIds, type GpuStorage, type Pages } from './storage.js';
import { ENTRY, GROUP, WG, grid } from './wgsl.js';
import { release, scratch, type Ctx } from './kernels/context.js';

/** How a tensor of `size` elements and `shape` splits under `limit` bytes per binding, or why it cannot. */
export function pageLayout(what: string, dtype: keyof typeof BYTES, size: number, shape: readonly number[] | undefined, limit: number, adapter: string):
  { pageElems: number; rowElems: number; count: number } {
  const bytes = size * BYTES[dtype];
  const why = `a ${dtype} tensor${shape ? ` [${shape.join(', ')}]` : ''} of ${bytes} bytes is above this device's ` +
    `maxStorageBufferBindingSize of ${limit} bytes (${adapter})`;
  if (!shape || shape.length < 2 || shape[0] < 2 || dtype !== 'f32') {
    throw new Error(`${what}: ${why}; only float32 tensors of 2 or more dims are split by rows: use smaller batches or sequences (or --device cpu)`);
  }
  const rowElems = size / shape[0];
  const rows = Math.floor(limit / (rowElems * BYTES[dtype]));
  if (rows < 1) throw new Error(`${what}: ${why}, and one row of ${rowElems * BYTES[dtype]} bytes is too: use --device cpu`);
  return { pageElems: rows * rowElems, rowElems, count: Math.ceil(shape[0] / rows) };
}

/** A storage over page i alone (shares the buffer; never freed on its own). */
function page(s: GpuStorage, i: number): GpuStorage {
  const p = s.pages!;
  return { backend: s.backend, dtype: s.dtype, size: Math.min(p.pageElems, s.size - i * p.pageElems), refs: 0, buffer: p.buffers[i] };
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
  throw new Error(`webgpu ${name}: a tensor of ${s.size * BYTES[s.dtype]} bytes is split into ${s.pages!.buffers.length} buffers ` +
    `(above maxStorageBufferBindingSize, ${limit} bytes here), and ${name} reads split tensors only as a matmul's B or an embedding table; ` +
    'use smaller batches or sequences (or --device cpu)');
}

/** The kernel table with split-tensor support wrapped around `inner`. */
export function pagedKernels(ctx: Ctx, inner: KernelTable): KernelTable {
  const limit = ctx.rt.maxBinding;
  const out: Record<string, (a: never) => void> = {};
  for (const [name, fn] of Object.entries(inner) as [KernelName, (a: never) => void][]) {
    out[name] = (a: never) => {
      const args = a as Record<string, unknown>;
      let split: GpuStorage | null = null;
      for (const v of Object.values(args)) if (paged(v as Storage)) split = v as GpuStorage;
      if (split === null) return fn(a);
      if (name === 'matmul' && paged(args.b as Storage) && !paged(args.a as Storage) && !paged(args.c as Storage)) return matmulB(ctx, inner, a as KernelArgs['matmul']);
      if (name === 'embedding' && paged(args.weight as Storage) && !paged(args.out as Storage)) return embedding(ctx, inner, a as KernelArgs['embedding']);
      if (name === 'fill') {
        const s = args.out as GpuStorage;
        for (let i = 0; i < s.pages!.buffers.length; i++) inner.fill({ ...(a as KernelArgs['fill']), out: page(s, i) });
        return;
      }
      refuse(name, split, limit);
    };
  }
  return out as unknown as KernelTable;
}

/** C = op(A) op(B) with B split by its stored rows. */
function matmulB(ctx: Ctx, inner: KernelTable, a: KernelArgs['matmul']): void {
  const b = a.b as GpuStorage, pg = b.pages!;
  const { M, N, K, batch } = a;
  if ((batch > 1 && a.strideB !== 0) || a.strideC !== M * N) {
    throw new Error(`webgpu matmul: a split B [${a.transB ? `${N}, ${K}` : `${K}, ${N}`}] works as one matrix shared by the batch (strideB ${a.strideB}, batch ${batch})`);
  }
  const rowLen = a.transB ? K : N;
  if (pg.pageElems % rowLen !== 0) throw new Error(`webgpu matmul: B's pages (${pg.pageElems} elements) do not hold whole rows of ${rowLen}`);
  const per = pg.pageElems / rowLen, rows = a.transB ? N : K;
  for (let i = 0, r0 = 0; r0 < rows; i++, r0 += per) {
    const n = Math.min(per, rows - r0);
    if (a.transB) {
      // Columns r0 .. r0 + n of C: their own product, then copied (or added) into place.
      const t = temp(ctx, a.c, batch * M * n);
      inner.matmul({ ...a, b: page(b, i), c: t, N: n, accumulate: false, strideB: 0, strideC: M * n });
      if (a.accumulate) {
        const cur = temp(ctx, a.c, batch * M * n);
        inner.copy({ src: a.c, dst: cur, shape: [batch * M, n], srcStrides: [N, 1], dstStrides: [n, 1], srcOffset: r0, dstOffset: 0 });
        inner.binary({ op: 'add', a: cur, b: t, out: t, shape: [batch * M * n], aStrides: [1], bStrides: [1] });
        drop(ctx, cur);
      }
      inner.copy({ src: t, dst: a.c, shape: [batch * M, n], srcStrides: [n, 1], dstStrides: [N, 1], srcOffset: 0, dstOffset: r0 });
      drop(ctx, t);
    } else {
      // K range r0 .. r0 + n: op(A)'s columns copied out, the products accumulated into C.
      const t = temp(ctx, a.a, batch * M * n);
      const sa = a.strideA;
      if (a.transA) inner.copy({ src: a.a, dst: t, shape: [batch, n, M], srcStrides: [sa, M, 1], dstStrides: [n * M, M, 1], srcOffset: r0 * M, dstOffset: 0 });
      else inner.copy({ src: a.a, dst: t, shape: [batch, M, n], srcStrides: [sa, K, 1], dstStrides: [M * n, n, 1], srcOffset: r0, dstOffset: 0 });
      inner.matmul({ ...a, a: t, b: page(b, i), K: n, accumulate: a.accumulate || r0 > 0, strideA: M * n, strideB: 0 });
      drop(ctx, t);
    }
  }
}

/** out[r] = weight[ids[r]] with the table split by rows: one masked gather per page. */
function embedding(ctx: Ctx, inner: KernelTable, a: KernelArgs['embedding']): void {
  checkIds('embedding', a.ids, a.N, a.V, false, 'id');
  const w = a.weight as GpuStorage, pg = w.pages!;
  inner.fill({ out: a.out, value: 0 });
  const k = ctx.rt.kernel('embedding_page', () => ({
    name: 'embedding (split table)', params: [['n', 'u32'], ['D', 'u32'], ['r0', 'u32'], ['rows', 'u32']],
    buffers: [['weight', 'f32', 'read'], ['ids', 'i32', 'read'], ['out', 'f32', 'read_write']],
    body: `
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let t = ${GROUP} * ${WG}u + li;
  if (t >= P.n) { return; }
  let id = ids[t / P.D];
  if (id >= i32(P.r0) && id < i32(P.r0 + P.rows)) {
    out[t] = weight[u32(id - i32(P.r0)) * P.D + t % P.D];
  }
}`,
  }));
  const n = a.N * a.D, per = pg.pageElems / a.D;
  for (let i = 0; i < pg.buffers.length; i++) {
    ctx.rt.run(k, [pg.buffers[i], (a.ids as GpuStorage).buffer, (a.out as GpuStorage).buffer], [n, a.D, i * per, Math.min(per, a.V - i * per)], grid(n));
  }
}
