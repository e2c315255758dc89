// Wrapper of assembly/random.ts: dropout masks, identical to ref/random.ts for any thread count.
import type { KernelRuntime } from '../runtime.js';
import { runElements } from './split.js';

/** out[i] = 1 / (1 - p) with probability 1 - p, else 0; seed is a uint32 stream id. */
export function dropoutMask(rt: KernelRuntime, out: number, n: number, p: number, seed: number): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropoutMask: p = ${p} is not a probability in [0, 1]`);
  runElements(rt, 'dropout_mask', [out, n, p, seed >>> 0], n, 2);
}
