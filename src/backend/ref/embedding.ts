// Embedding lookup and its gradient (reference kernels).
import type { F, I } from './types.js';

/** Throws naming the first id outside [0, V) and its position. */
export function checkIds(fn: string, ids: I, N: number, V: number): void {
  for (let r = 0; r < N; r++) {
    const id = ids[r];
    if (!(id >= 0 && id < V)) {
      throw new Error(
        `${fn}: id ${id} at position ${r} is outside [0, ${V}) (vocab size V = ${V}; ` +
          'a tokenizer for another model?)',
      );
    }
  }
}

/** out[r] = weight[ids[r]]; weight [V, D], ids [N], out [N, D]. */
export function embedding(weight: F, ids: I, out: F, N: number, D: number, V: number): void {
  checkIds('embedding', ids, N, V);
  for (let r = 0; r < N; r++) {
    for (let j = 0; j < D; j++) out[r * D + j] = weight[ids[r] * D + j];
  }
}

/** dweight[ids[r]] += dy[r] (accumulates: the caller zeroes dweight). dy [N, D], dweight [V, D]. */
export function embeddingGrad(dy: F, ids: I, dweight: F, N: number, D: number, V: number): void {
  checkIds('embeddingGrad', ids, N, V);
  for (let r = 0; r < N; r++) {
    for (let j = 0; j < D; j++) dweight[ids[r] * D + j] += dy[r * D + j];
  }
}
