// Strided copy (reference kernel): permute, slice, concat and broadcastTo are all this one loop.
import { forEachIndex } from './elementwise.js';

/** Any typed array of numbers (float32/64, int32, uint16 for bf16 bits...). */
type Numeric = { [i: number]: number; readonly length: number };

/**
 * dst[idx . dstStrides] = src[idx . srcStrides] for every idx of shape; meta = [shape(ndim),
 * srcStrides(ndim), dstStrides(ndim)] in elements. elemBytes (4 in the WebAssembly kernel) is
 * implied here by the arrays' types and only checked for sense.
 */
export function copyStrided(src: Numeric, dst: Numeric, ndim: number, meta: ArrayLike<number>, elemBytes = 4): void {
  if (meta.length < 3 * ndim)
    throw new Error(`copyStrided: meta has ${meta.length} numbers, expected 3 * ndim = ${3 * ndim}`);
  if (![1, 2, 4, 8].includes(elemBytes)) throw new Error(`copyStrided: elemBytes ${elemBytes} (expected 1, 2, 4 or 8)`);
  const shape: number[] = [],
    ss: number[] = [],
    ds: number[] = [];
  for (let d = 0; d < ndim; d++) {
    shape.push(meta[d]);
    ss.push(meta[ndim + d]);
    ds.push(meta[2 * ndim + d]);
  }
  forEachIndex(shape, [ss, ds], ([is, id]) => {
    dst[id] = src[is];
  });
}
