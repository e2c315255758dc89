// How the fast-kernel wrappers split work across threads. A parallel dispatch costs ~7 us, about
// the time one core needs to stream 32K floats through a cheap elementwise op; smaller jobs run
// on the calling thread alone.
import type { KernelRuntime } from '../runtime.js';

/** Work below this many element-operations (cost 1 each) stays on one thread. */
export const MIN_PARALLEL_WORK = 32768;

/** Elementwise slices are multiples of 64 floats (256 B: whole cache lines, whole vectors). */
export const ELEMENT_GRAIN = 64;

/**
 * Runs an elementwise kernel over n elements; `cost` is the work per element relative to a copy
 * (about 1 for arithmetic, 4-8 for transcendentals), so costly ops go parallel sooner.
 */
export function runElements(rt: KernelRuntime, name: string, args: number[], n: number, cost = 1): void {
  rt.run(name, args, n, ELEMENT_GRAIN, Math.ceil(MIN_PARALLEL_WORK / cost));
}

/** Runs a row kernel over N rows of D elements each (rows never split). */
export function runRows(rt: KernelRuntime, name: string, args: number[], N: number, D: number, cost = 1): void {
  rt.run(name, args, N, 1, Math.ceil(MIN_PARALLEL_WORK / Math.max(1, D * cost)));
}

/**
 * Runs a column kernel over D columns that each sum N rows; slices are multiples of 16 columns
 * (64 B) so that two threads never write the same cache line.
 */
export function runColumns(rt: KernelRuntime, name: string, args: number[], N: number, D: number, cost = 1): void {
  rt.run(name, args, D, 16, Math.ceil(MIN_PARALLEL_WORK / Math.max(1, N * cost)));
}
