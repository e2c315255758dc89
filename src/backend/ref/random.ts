// Dropout masks from a counter-based hash: element i's draw depends only on (seed, i), so any
// thread split, and the WebAssembly kernel (assembly/random.ts), give the same mask.
import type { F } from './types.js';

/** A 32-bit integer mixer with full avalanche (Wellons' "lowbias32"). */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** 24 random bits for element i of stream `seed`: two mixing rounds keyed by the seed. */
export function hash24(seed: number, i: number): number {
  const k = mix32((seed + 0x9e3779b9) >>> 0);
  return mix32((mix32((i ^ k) >>> 0) + k) >>> 0) >>> 8;
}

/**
 * out[i] = 1 / (1 - p) where hash24(seed, i) / 2^24 >= p, else 0 (the element is dropped with
 * probability p). The comparison is done on integers, hash24 >= ceil(p 2^24), so float32 and
 * float64 code agree exactly.
 */
export function dropoutMask(out: F, n: number, p: number, seed: number): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropoutMask: p = ${p} is not a probability in [0, 1]`);
  const threshold = Math.ceil(p * 16777216),
    scale = 1 / (1 - p);
  for (let i = 0; i < n; i++) out[i] = hash24(seed >>> 0, i) >= threshold ? scale : 0;
}
