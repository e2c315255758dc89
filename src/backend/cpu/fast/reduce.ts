// Wrapper of assembly/reduce.ts: sum or max over the middle axis of [outer, red, inner].
import { REDUCE_OPS, type ReduceOp } from '../../ref/reduce.js';
import type { KernelRuntime } from '../runtime.js';
import { ELEMENT_GRAIN, MIN_PARALLEL_WORK } from './split.js';

export function reduce(
  rt: KernelRuntime,
  op: ReduceOp,
  x: number,
  out: number,
  outer: number,
  red: number,
  inner: number,
): void {
  const code = REDUCE_OPS[op];
  if (code === undefined) throw new Error(`reduce: unknown op '${op}' (sum or max)`);
  const n = outer * inner;
  // inner == 1: whole rows per unit; otherwise whole vectors of columns per slice
  const grain = inner === 1 ? 1 : Math.min(ELEMENT_GRAIN, inner);
  rt.run('reduce', [code, x, out, outer, red, inner], n, grain, Math.ceil(MIN_PARALLEL_WORK / Math.max(1, red)));
}
