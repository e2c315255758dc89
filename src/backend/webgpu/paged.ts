// WebGPU tensors larger than one storage binding (maxStorageBufferBindingSize, 128 MiB unless an
// adapter grants more: a 151,936 x 896 embedding is 545 MB in f32). Such a tensor is split by
// rows of its leading dim into pages, one buffer each (storage.ts Pages). What full fine-tuning
// does to a weight works on pages:
// - matmul with a split B (x W^T: a product per page of output columns, copied into place;
//   dy W: a product per page of K, accumulated) and with a split C (dW = dy^T x: a product per
//   block of C's rows, the block's rows of op(A) copied out first);
// - embedding (a gather per page) and its gradient into a split table (a scatter-add per page);
// - the elementwise kernels (fill, copy of contiguous ranges, cast, unary, unaryGrad, affine,
//   binary with operands broadcast over leading dims), the optimizers (adamw, rmsprop, sgd) and
//   sumSquares: the same kernel once per page;
// - host reads and writes (backend.ts).
// Any other kernel given a split tensor throws, naming the kernel, the sizes and the limit.
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
import { embeddingGrad as embeddingGradRows } from './kernels/embedding.js';

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

function refuse(name: string, s: GpuStorage, limit: number, why?: string): never {
  throw new Error(
    `webgpu ${name}: a tensor of ${s.size * BYTES[s.dtype]} bytes is split into ${s.pages!.buffers.length} buffers ` +
      `(above maxStorageBufferBindingSize, ${limit} bytes here), and ` +
      (why ??
        `${name} does not take split tensors (matmul, embedding, embeddingGrad, the elementwise kernels, the optimizers and sumSquares do)`) +
      '; use smaller batches or sequences (or --device cpu)',
  );
}

type Handlers = { [K in KernelName]?: (a: KernelArgs[K]) => void };

/** The kernel table with split-tensor and bf16 support wrapped around `inner`. */
export function pagedKernels(ctx: Ctx, inner: KernelTable): KernelTable {
  const limit = ctx.rt.maxBinding;
  const each = (name: string, n: number, writes: (Storage | null)[], reads: (Storage | null)[], run: PageFn): void =>
    eachPage(ctx, name, n, writes, reads, run);
  const onPages: Handlers = {
    matmul: (a) => matmulPaged(ctx, inner, a),
    embedding: (a) => {
      if (paged(a.out)) refuse('embedding', a.out, limit, 'its output (activations) cannot be split');
      embedding(ctx, inner, a);
    },
    embeddingGrad: (a) => embeddingGradPaged(ctx, a),
    fill: (a) => each('fill', a.out.size, [a.out], [], (part) => inner.fill({ ...a, out: part(a.out) })),
    copy: (a) => copyPaged(ctx, inner, a),
    cast: (a) =>
      each('cast', a.n, [a.dst], [a.src], (part, n) => inner.cast({ src: part(a.src), dst: part(a.dst), n })),
    unary: (a) =>
      each('unary', a.n, [a.out], [a.x], (part, n) => inner.unary({ ...a, x: part(a.x), out: part(a.out), n })),
    unaryGrad: (a) =>
      each('unaryGrad', a.n, [a.dx], [a.x, a.dy], (part, n) =>
        inner.unaryGrad({ ...a, x: part(a.x), dy: part(a.dy), dx: part(a.dx), n }),
      ),
    affine: (a) =>
      each('affine', a.n, [a.out], [a.x], (part, n) => inner.affine({ ...a, x: part(a.x), out: part(a.out), n })),
    binary: (a) => binaryPaged(ctx, inner, a),
    adamw: (a) =>
      each('adamw', a.n, [a.p, a.m, a.v], [a.g], (part, n) =>
        inner.adamw({ ...a, p: part(a.p), g: part(a.g), m: part(a.m), v: part(a.v), n }),
      ),
    rmsprop: (a) =>
      each('rmsprop', a.n, [a.p, a.sq], [a.g], (part, n) =>
        inner.rmsprop({ ...a, p: part(a.p), g: part(a.g), sq: part(a.sq), n }),
      ),
    sgd: (a) =>
      each('sgd', a.n, [a.p, a.buf], [a.g], (part, n) =>
        inner.sgd({ ...a, p: part(a.p), g: part(a.g), buf: a.buf && part(a.buf), n }),
      ),
    // out[index] += each page's sum: the same norm, summed in a different order.
    sumSquares: (a) => each('sumSquares', a.n, [], [a.x], (part, n) => inner.sumSquares({ ...a, x: part(a.x), n })),
  };
  const out: Record<string, (a: never) => void> = {};
  for (const [name, fn] of Object.entries(inner) as [KernelName, (a: never) => void][]) {
    const handler = onPages[name] as ((a: never) => void) | undefined;
    out[name] = (a: never) => {
      let split: GpuStorage | null = null,
        half: GpuStorage | null = null;
      for (const v of Object.values(a as Record<string, unknown>)) {
        if (!isStorage(v)) continue;
        if (v.dtype === 'bf16') half = v;
        if (paged(v)) split = v;
      }
      if (split === null && half === null) return fn(a);
      if (half !== null && name !== 'matmul' && name !== 'embedding')
        throw new Error(
          `webgpu ${name}: a bfloat16 tensor of ${half.size} elements is a frozen weight, which only matmul (as B) and embedding read`,
        );
      if (handler) return handler(a);
      refuse(name, split!, limit);
    };
  }
  return out as unknown as KernelTable;
}

function isStorage(v: unknown): v is GpuStorage {
  return !!v && typeof v === 'object' && 'buffer' in v && 'dtype' in v;
}

/** Records one page's work; part(s) is operand s's elements [e0, e0 + n) as a storage. */
type PageFn = (part: (s: Storage) => GpuStorage, n: number, e0: number) => void;

/**
 * An elementwise kernel over all `count` elements of its operands, once per page of the split ones
 * (all of one size). `writes` must be split alike (the same rows per page); a read split otherwise
 * (or not at all) has its elements of each page copied out first.
 */
function eachPage(
  ctx: Ctx,
  name: string,
  count: number,
  writes: (Storage | null)[],
  reads: (Storage | null)[],
  run: PageFn,
): void {
  const all = [...writes, ...reads].filter((s): s is GpuStorage => s !== null);
  const ref = all.find(paged)!;
  const { pageElems, buffers } = ref.pages!;
  for (const s of all) {
    if (s.size !== ref.size || count !== ref.size)
      throw new Error(
        `webgpu ${name}: ${count} elements of operands of ${all.map((x) => x.size).join(' and ')}; with a split tensor (above maxStorageBufferBindingSize, ${ctx.rt.maxBinding} bytes here) it runs on whole tensors of one size`,
      );
    if (s.dtype === 'bf16')
      throw new Error(`webgpu ${name}: a bfloat16 operand (frozen weights are read only by matmul and embedding)`);
  }
  for (const s of writes)
    if (s !== null && (!paged(s) || s.pages.pageElems !== pageElems))
      throw new Error(
        `webgpu ${name}: the tensors it writes are split differently (pages of ${paged(s) ? s.pages.pageElems : s.size} and ${pageElems} elements)`,
      );
  for (let i = 0; i < buffers.length; i++) {
    const e0 = i * pageElems,
      n = Math.min(pageElems, ref.size - e0);
    const temps: GpuStorage[] = [];
    const part = (s: Storage): GpuStorage => {
      const g = s as GpuStorage;
      if (paged(g) && g.pages.pageElems === pageElems) return page(g, i);
      const t = { ...temp(ctx, g, n), dtype: g.dtype };
      copyRange(ctx, g, e0, t, 0, n);
      temps.push(t);
      return t;
    };
    run(part, n, e0);
    for (const t of temps) drop(ctx, t);
  }
}

/** The buffer holding element e of s, and e's index in it. */
function locate(s: GpuStorage, e: number): { buffer: GPUBuffer; at: number; left: number } {
  if (!s.pages) return { buffer: s.buffer, at: e, left: s.size - e };
  const i = Math.floor(e / s.pages.pageElems),
    at = e - i * s.pages.pageElems;
  return { buffer: s.pages.buffers[i], at, left: Math.min(s.pages.pageElems, s.size - i * s.pages.pageElems) - at };
}

/** dst[d0 .. d0 + n) = src[s0 .. s0 + n) for 4-byte values, split or not: buffer copies. */
function copyRange(ctx: Ctx, src: GpuStorage, s0: number, dst: GpuStorage, d0: number, n: number): void {
  for (let e = 0; e < n;) {
    const a = locate(src, s0 + e),
      b = locate(dst, d0 + e);
    const len = Math.min(a.left, b.left, n - e);
    ctx.rt.copy(a.buffer, a.at * 4, b.buffer, b.at * 4, len * 4);
    e += len;
  }
}

/**
 * A strided copy with split operands: in runs of the leading index whose elements lie in one page
 * of each split operand (a contiguous copy: a run per page), each run the plain copy on pages.
 */
function copyPaged(ctx: Ctx, inner: KernelTable, a: KernelArgs['copy']): void {
  const src = a.src as GpuStorage,
    dst = a.dst as GpuStorage;
  if (src.dtype !== dst.dtype)
    throw new Error(`webgpu copy: ${src.dtype} to ${dst.dtype} with a split tensor (copy keeps the dtype)`);
  const shape = a.shape.length === 0 ? [1] : a.shape;
  const sSt = a.shape.length === 0 ? [0] : a.srcStrides,
    dSt = a.shape.length === 0 ? [0] : a.dstStrides;
  if (shape.some((d) => d === 0)) return;
  // Elements an index range [i0, i1) of dim 0 touches in an operand: [lo, hi).
  const span = (st: number[], off: number, i0: number, i1: number): [number, number] => {
    let lo = off,
      hi = off;
    for (let d = 0; d < shape.length; d++) {
      const [f, l] = d === 0 ? [i0, i1 - 1] : [0, shape[d] - 1];
      lo += Math.min(f * st[d], l * st[d]);
      hi += Math.max(f * st[d], l * st[d]);
    }
    return [lo, hi + 1];
  };
  const pageOf = (s: GpuStorage, e: number): number => (s.pages ? Math.floor(e / s.pages.pageElems) : 0);
  const fits = (s: GpuStorage, [lo, hi]: [number, number]): boolean => pageOf(s, lo) === pageOf(s, hi - 1);
  const view = (s: GpuStorage, lo: number): { st: GpuStorage; base: number } => {
    if (!s.pages) return { st: s, base: 0 };
    const p = pageOf(s, lo);
    return { st: page(s, p), base: p * s.pages.pageElems };
  };
  for (let i0 = 0; i0 < shape[0];) {
    let i1 = i0 + 1;
    if (!fits(src, span(sSt, a.srcOffset, i0, i1)) || !fits(dst, span(dSt, a.dstOffset, i0, i1)))
      throw new Error(
        `webgpu copy: one row of a [${a.shape.join(', ')}] copy spans two pages of a split tensor (above maxStorageBufferBindingSize, ${ctx.rt.maxBinding} bytes here); use --device cpu`,
      );
    // Grow the run, by doubling steps, while it stays within one page of each split operand.
    let step = 1;
    while (i1 < shape[0]) {
      const next = Math.min(shape[0], i1 + step);
      if (!fits(src, span(sSt, a.srcOffset, i0, next)) || !fits(dst, span(dSt, a.dstOffset, i0, next))) {
        if (step === 1) break;
        step = 1;
        continue;
      }
      i1 = next;
      step *= 2;
    }
    const s = view(src, span(sSt, a.srcOffset, i0, i1)[0]),
      d = view(dst, span(dSt, a.dstOffset, i0, i1)[0]);
    inner.copy({
      src: s.st,
      dst: d.st,
      shape: [i1 - i0, ...shape.slice(1)],
      srcStrides: sSt,
      dstStrides: dSt,
      srcOffset: a.srcOffset + i0 * sSt[0] - s.base,
      dstOffset: a.dstOffset + i0 * dSt[0] - d.base,
    });
    i0 = i1;
  }
}

/** Row-major strides of a shape. */
function rowMajor(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  for (let d = shape.length - 1, s = 1; d >= 0; d--) {
    st[d] = s;
    s *= shape[d];
  }
  return st;
}

/**
 * A binary op whose output is split: split operands must be contiguous (as the output), the
 * others broadcast along leading dims (a scalar, a bias row); the op runs once per page, as
 * [rows, ...inner dims].
 */
function binaryPaged(ctx: Ctx, inner: KernelTable, a: KernelArgs['binary']): void {
  const out = a.out as GpuStorage,
    limit = ctx.rt.maxBinding;
  const what = `a split ${a.op} operand`;
  if (!paged(out)) refuse(`binary ${a.op}`, [a.a, a.b].find(paged)!, limit, 'its output is not split alike');
  const contiguous = rowMajor(a.shape);
  let d = a.shape.length;
  for (const [x, st] of [
    [a.a, a.aStrides],
    [a.b, a.bStrides],
  ] as const) {
    if (paged(x)) {
      if (a.shape.some((n, k) => n > 1 && st[k] !== contiguous[k]))
        refuse(`binary ${a.op}`, x, limit, `${what} must be contiguous (strides [${st.join(', ')}])`);
    } else {
      let z = 0;
      while (z < a.shape.length && (a.shape[z] === 1 || st[z] === 0)) z++;
      d = Math.min(d, z);
    }
  }
  const rest = a.shape.slice(d),
    C = rest.reduce((x, y) => x * y, 1);
  const restSt = rowMajor(rest);
  eachPage(ctx, `binary ${a.op}`, out.size, [out], [a.a, a.b].filter(paged), (part, n, e0) => {
    if (n % C !== 0 || e0 % C !== 0)
      refuse(
        `binary ${a.op}`,
        out,
        limit,
        `a page of ${n} elements is not whole rows of the ${C} that an operand repeats`,
      );
    const side = (x: Storage, st: number[]): [Storage, number[]] =>
      paged(x) ? [part(x), [C, ...restSt]] : [x, [0, ...st.slice(d)]];
    const [xa, sa] = side(a.a, a.aStrides),
      [xb, sb] = side(a.b, a.bStrides);
    inner.binary({ op: a.op, a: xa, b: xb, out: part(out), shape: [n / C, ...rest], aStrides: sa, bStrides: sb });
  });
}

/** dweight[ids[r]] += dy[r] into a split table: the scatter-add once per page, for the ids in its rows. */
function embeddingGradPaged(ctx: Ctx, a: KernelArgs['embeddingGrad']): void {
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

/** C = op(A) op(B) with a split (or bf16) B, a split C, or both; A is never split. */
function matmulPaged(ctx: Ctx, inner: KernelTable, a: KernelArgs['matmul']): void {
  const A = a.a as GpuStorage,
    C = a.c as GpuStorage;
  if (paged(A) || A.dtype === 'bf16')
    throw new Error(
      `webgpu matmul: A [${a.transA ? `${a.K}, ${a.M}` : `${a.M}, ${a.K}`}] is ${paged(A) ? `split (above maxStorageBufferBindingSize, ${ctx.rt.maxBinding} bytes here)` : 'bfloat16'}; only B (a weight) and C (its gradient) may be: use smaller batches or sequences (or --device cpu)`,
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
