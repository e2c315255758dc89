// Elementwise kernels, optimizers and sumSquares on split tensors (paged.ts): the kernel once per
// page, operands split otherwise copied out a page at a time; copies in runs that stay within one
// page of each operand; binary ops with operands broadcast along leading dims.
import type { Storage } from '../../core/backend.js';
import type { KernelArgs, KernelTable } from '../../core/kernels.js';
import type { GpuStorage } from './storage.js';
import type { Ctx } from './kernels/context.js';
import { copyRange, drop, page, paged, refuse, temp } from './pages.js';

/** Records one page's work; part(s) is operand s's elements [e0, e0 + n) as a storage. */
export type PageFn = (part: (s: Storage) => GpuStorage, n: number, e0: number) => void;

/**
 * An elementwise kernel over all `count` elements of its operands, once per page of the split ones
 * (all of one size). `writes` must be split alike (the same rows per page); a read split otherwise
 * (or not at all) has its elements of each page copied out first.
 */
export function eachPage(
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
        `webgpu ${name}: ${count} elements of operands of ${all.map((x) => x.size).join(' and ')}; ` +
          `with a split tensor (above maxStorageBufferBindingSize, ${ctx.rt.maxBinding} bytes here) ` +
          'it runs on whole tensors of one size',
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

/**
 * A strided copy with split operands: in runs of the leading index whose elements lie in one page
 * of each split operand (a contiguous copy: a run per page), each run the plain copy on pages.
 */
export function copyPaged(ctx: Ctx, inner: KernelTable, a: KernelArgs['copy']): void {
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
        `webgpu copy: one row of a [${a.shape.join(', ')}] copy spans two pages of a split tensor ` +
          `(above maxStorageBufferBindingSize, ${ctx.rt.maxBinding} bytes here); use --device cpu`,
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
export function binaryPaged(ctx: Ctx, inner: KernelTable, a: KernelArgs['binary']): void {
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
