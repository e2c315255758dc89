// Wrappers of assembly/elementwise.ts: binary, where (broadcasting, dims collapsed), affine, cast.
import { BINARY_OPS, type BinaryOp } from '../../ref/elementwise.js';
import type { KernelRuntime } from '../runtime.js';
import { runElements } from './split.js';
import { contiguousStrides, runStrided, splitMeta } from './strided.js';

/**
 * out = a (op) b; meta = [shape(ndim), aStrides(ndim), bStrides(ndim)] in elements (0
 * broadcasts); out is contiguous. Addresses are bytes.
 */
export function binary(
  rt: KernelRuntime,
  op: BinaryOp,
  a: number,
  b: number,
  out: number,
  ndim: number,
  meta: readonly number[],
): void {
  const code = BINARY_OPS[op];
  if (code === undefined) throw new Error(`binary: unknown op '${op}' (one of ${Object.keys(BINARY_OPS).join(', ')})`);
  const [shape, as, bs] = splitMeta('binary', ndim, meta, 3);
  runStrided(
    rt,
    'binary',
    [a, b, out],
    4,
    shape,
    [as, bs, contiguousStrides(shape)],
    ([pa, pb, po], nd, m) => [code, pa, pb, po, nd, m],
    op === 'pow' ? 8 : 1,
  );
}

/** out = cond != 0 ? a : b; meta = [shape, condStrides, aStrides, bStrides]; out contiguous. */
export function where(
  rt: KernelRuntime,
  cond: number,
  a: number,
  b: number,
  out: number,
  ndim: number,
  meta: readonly number[],
): void {
  const [shape, cs, as, bs] = splitMeta('where', ndim, meta, 4);
  runStrided(
    rt,
    'where',
    [cond, a, b, out],
    4,
    shape,
    [cs, as, bs, contiguousStrides(shape)],
    ([pc, pa, pb, po], nd, m) => [pc, pa, pb, po, nd, m],
  );
}

/** out = x * scale + shift over n floats. */
export function affine(rt: KernelRuntime, x: number, out: number, scale: number, shift: number, n: number): void {
  runElements(rt, 'affine', [x, out, scale, shift, n], n);
}

/** mode 0: int32 -> float32; mode 1: float32 -> int32 (truncating, saturating, NaN -> 0). */
export function cast(rt: KernelRuntime, src: number, dst: number, n: number, mode: 0 | 1): void {
  if (mode !== 0 && mode !== 1) throw new Error(`cast: mode ${mode} (0 int32 -> float32, 1 float32 -> int32)`);
  runElements(rt, 'cast', [src, dst, n, mode], n);
}
