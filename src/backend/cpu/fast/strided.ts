// Planning of the strided kernels (binary, where, copy_strided): merge dims that are contiguous in
// every operand so the kernels' inner loop is as long as possible, and cut a long single row into
// pieces so that it can run on several threads.
import type { KernelRuntime } from '../runtime.js';
import { MIN_PARALLEL_WORK } from './split.js';

/** One dispatch: a shape, each operand's strides, and each operand's element offset. */
export interface StridedPlan {
  shape: number[];
  strides: number[][];
  offsets: number[];
}

/** Contiguous row-major strides of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * Drops size-1 dims and merges dim d into d+1 where every operand has
 * stride[d] == stride[d+1] * shape[d+1]. Always returns at least one dim.
 */
export function collapse(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const keep = shape.map((_, d) => d).filter((d) => shape[d] !== 1);
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (const d of keep) {
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => {
        outStrides[k][last] = s[d];
      });
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  if (outShape.length === 0) return { shape: [1], strides: strides.map(() => [1]) };
  return { shape: outShape, strides: outStrides };
}

/** Pieces a long row is cut into for threads: at least this many elements each. */
const PIECE = 16384;

/**
 * Collapses, then, when there are fewer rows than threads and the rows are long, splits the last
 * dim L into [L / c, c] (c a multiple of 64 dividing L), or for a single row into a [q, c] view
 * plus a remainder dispatch.
 */
export function planStrided(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  threads: number,
): StridedPlan[] {
  const c = collapse(shape, strides);
  const nd = c.shape.length,
    L = c.shape[nd - 1];
  const rows = c.shape.slice(0, -1).reduce((p, s) => p * s, 1);
  const zero = strides.map(() => 0);
  if (threads === 1 || rows >= 2 * threads || L < 2 * PIECE) return [{ ...c, offsets: zero }];
  const inner = c.strides.map((s) => s[nd - 1]);
  for (let piece = 4096; piece >= 64; piece -= 64) {
    if (L % piece === 0) {
      return [
        {
          shape: [...c.shape.slice(0, -1), L / piece, piece],
          strides: c.strides.map((s, k) => [...s.slice(0, -1), inner[k] * piece, inner[k]]),
          offsets: zero,
        },
      ];
    }
  }
  if (rows !== 1) return [{ ...c, offsets: zero }];
  const piece = 4096,
    q = Math.floor(L / piece);
  return [
    { shape: [q, piece], strides: inner.map((s) => [s * piece, s]), offsets: zero },
    { shape: [L - q * piece], strides: inner.map((s) => [s]), offsets: inner.map((s) => s * q * piece) },
  ];
}

/**
 * Runs `name` once per plan piece with args [...pointers moved by the piece's offsets,
 * ...extra before meta, ndim, meta, ...after], over the piece's rows.
 */
export function runStrided(
  rt: KernelRuntime,
  name: string,
  pointers: number[],
  elemBytes: number,
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  args: (ptrs: number[], ndim: number, meta: number) => number[],
  cost = 1,
): void {
  for (const p of planStrided(shape, strides, rt.threads)) {
    const nd = p.shape.length,
      L = p.shape[nd - 1];
    const rows = p.shape.slice(0, -1).reduce((a, s) => a * s, 1);
    const ptrs = pointers.map((ptr, k) => ptr + p.offsets[k] * elemBytes);
    const meta = rt.meta([...p.shape, ...p.strides.flat()]);
    rt.run(name, args(ptrs, nd, meta), rows, 1, Math.ceil(MIN_PARALLEL_WORK / (L * cost)));
  }
}

/** Splits a [shape, strides_0, ..., strides_(k-1)] meta list, checking its length. */
export function splitMeta(fn: string, ndim: number, meta: readonly number[], lists: number): number[][] {
  if (!(ndim >= 1 && ndim <= 32) || meta.length !== ndim * lists) {
    throw new Error(
      `${fn}: meta has ${meta.length} numbers for ndim ${ndim}, ` +
        `expected ${lists} lists of ndim numbers, 1 <= ndim <= 32`,
    );
  }
  return Array.from({ length: lists }, (_, k) => meta.slice(k * ndim, (k + 1) * ndim));
}
