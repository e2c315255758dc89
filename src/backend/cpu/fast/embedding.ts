// Wrappers of assembly/embedding.ts. ids are int32; an id outside [0, V) throws "index out of range".
import type { KernelRuntime } from '../runtime.js';
import { runColumns, runRows } from './split.js';

/** out[r] = weight[ids[r]]: weight [V, D], ids [N], out [N, D]. */
export function embedding(
  rt: KernelRuntime,
  weight: number,
  ids: number,
  out: number,
  N: number,
  D: number,
  V: number,
): void {
  runRows(rt, 'embedding', [weight, ids, out, N, D, V], N, D);
}

/** dweight[ids[r]] += dy[r] (dweight zeroed by the caller); threads split the columns. */
export function embeddingGrad(
  rt: KernelRuntime,
  dy: number,
  ids: number,
  dweight: number,
  N: number,
  D: number,
  V: number,
): void {
  runColumns(rt, 'embedding_grad', [dy, ids, dweight, N, D, V], N, D);
}
