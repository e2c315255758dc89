// Wrapper of assembly/copy.ts: strided copy with dims collapsed before dispatch.
import type { KernelRuntime } from '../runtime.js';
import { runStrided, splitMeta } from './strided.js';

/**
 * dst[idx . dstStrides] = src[idx . srcStrides]; meta = [shape, srcStrides, dstStrides] in
 * elements of elemBytes (1, 2, 4 or 8) bytes; addresses in bytes.
 */
export function copyStrided(
  rt: KernelRuntime,
  src: number,
  dst: number,
  ndim: number,
  meta: readonly number[],
  elemBytes = 4,
): void {
  if (![1, 2, 4, 8].includes(elemBytes)) throw new Error(`copyStrided: elemBytes ${elemBytes} (expected 1, 2, 4 or 8)`);
  const [shape, ss, ds] = splitMeta('copyStrided', ndim, meta, 3);
  runStrided(rt, 'copy_strided', [src, dst], elemBytes, shape, [ss, ds], ([ps, pd], nd, m) => [
    ps,
    pd,
    nd,
    m,
    elemBytes,
  ]);
}
