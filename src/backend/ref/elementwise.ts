// Elementwise reference kernels over strided views: broadcasting binary ops, where, affine, cast.
import type { BinaryOp } from '../../core/kernels.js';
import { BINARY_CODES, BINARY_DEFS, BINARY_OP_NAMES } from '../elementwise-ops.js';
import type { F, I } from './types.js';

/** Op codes shared with the WebAssembly kernels (generated assembly/binary.ts). Comparisons give 0 or 1. */
export const BINARY_OPS: Readonly<Record<BinaryOp, number>> = BINARY_CODES;
export type { BinaryOp };

/**
 * a (op) b in float64 (the ref forms of ../elementwise-ops.ts); max / min propagate NaN like torch.maximum / minimum.
 */
export const BINARY = Object.fromEntries(BINARY_OP_NAMES.map((op) => [op, BINARY_DEFS[op].ref])) as Record<
  BinaryOp,
  (a: number, b: number) => number
>;

/**
 * Visits every index of `shape` in row-major order, calling `visit` with the element offsets
 * `sum(idx[d] * strides[k][d])` for each stride list.
 */
export function forEachIndex(
  shape: ArrayLike<number>,
  strides: ArrayLike<number>[],
  visit: (offsets: number[]) => void,
): void {
  const ndim = shape.length;
  let total = 1;
  for (let d = 0; d < ndim; d++) total *= shape[d];
  const idx = new Array<number>(ndim).fill(0);
  const off = strides.map(() => 0);
  for (let e = 0; e < total; e++) {
    visit(off);
    // Odometer step: bump the last dim, carry into earlier ones.
    for (let d = ndim - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < strides.length; k++) off[k] += strides[k][d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < strides.length; k++) off[k] -= shape[d] * strides[k][d];
      idx[d] = 0;
    }
  }
}

/** Splits `meta` into `count` lists of `ndim` numbers: [shape, strides1, strides2, ...]. */
function lists(meta: ArrayLike<number>, ndim: number, count: number, fn: string): number[][] {
  if (meta.length < ndim * count) {
    throw new Error(`${fn}: meta has ${meta.length} numbers, expected ${count} lists of ndim ${ndim}`);
  }
  const out: number[][] = [];
  for (let k = 0; k < count; k++) out.push(Array.from({ length: ndim }, (_, d) => meta[k * ndim + d]));
  return out;
}

/**
 * out = a (op) b with broadcasting: meta = [shape(ndim), aStrides(ndim), bStrides(ndim)] in
 * elements (stride 0 broadcasts); out is contiguous with that shape.
 */
export function binary(op: BinaryOp, a: F, b: F, out: F, ndim: number, meta: ArrayLike<number>): void {
  const f = BINARY[op];
  const [shape, as, bs] = lists(meta, ndim, 3, 'binary');
  let o = 0;
  forEachIndex(shape, [as, bs], ([ia, ib]) => {
    out[o++] = f(a[ia], b[ib]);
  });
}

/** out = cond != 0 ? a : b; meta = [shape, condStrides, aStrides, bStrides]. */
export function where(cond: F, a: F, b: F, out: F, ndim: number, meta: ArrayLike<number>): void {
  const [shape, cs, as, bs] = lists(meta, ndim, 4, 'where');
  let o = 0;
  forEachIndex(shape, [cs, as, bs], ([ic, ia, ib]) => {
    out[o++] = cond[ic] !== 0 ? a[ia] : b[ib];
  });
}

/** out = x * scale + shift. */
export function affine(x: F, out: F, scale: number, shift: number, n: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i] * scale + shift;
}

/**
 * mode 0: int32 -> float; mode 1: float -> int32 truncating toward zero, saturating at the int32
 * range with NaN -> 0 (WebAssembly's i32.trunc_sat_f32_s).
 */
export function cast(src: F | I, dst: F | I, n: number, mode: 0 | 1): void {
  if (mode === 0) {
    for (let i = 0; i < n; i++) dst[i] = src[i];
    return;
  }
  for (let i = 0; i < n; i++) {
    const v = src[i];
    dst[i] = Number.isNaN(v) ? 0 : Math.max(-2147483648, Math.min(2147483647, Math.trunc(v)));
  }
}
