// Reduction of the middle axis of an [outer, red, inner] view (reference kernel).
import type { F } from './types.js';

export const REDUCE_OPS = { sum: 0, max: 1 } as const;
export type ReduceOp = keyof typeof REDUCE_OPS;

/**
 * out[o, i] = sum_r x[o, r, i] (op sum) or max_r x[o, r, i] (op max, NaN propagates; -inf when
 * red is 0). x is [outer, red, inner], out [outer, inner]. Sums accumulate in float64.
 */
export function reduce(op: ReduceOp, x: F, out: F, outer: number, red: number, inner: number): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc = op === 'sum' ? 0 : -Infinity;
      for (let r = 0; r < red; r++) {
        const v = x[(o * red + r) * inner + i];
        acc = op === 'sum' ? acc + v : Math.max(acc, v);
      }
      out[o * inner + i] = acc;
    }
  }
}
