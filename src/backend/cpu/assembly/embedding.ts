// Embedding lookup (work unit: rows) and its gradient (work unit: columns of D, so that threads
// accumulate into disjoint parts of dweight even when ids repeat).
import { copyRow, addRow } from './vec';

/** out[r] = weight[ids[r]]; weight [V, D], out [N, D]. Error 1 for an id outside [0, V). */
export function embedding(weight: usize, ids: usize, out: usize, N: i32, D: i32, V: i32, start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    if (id < 0 || id >= V) return 1;
  }
  for (let r = start; r < end; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    copyRow(out + ((<usize>r * <usize>D) << 2), weight + ((<usize>id * <usize>D) << 2), D);
  }
  return 0;
}

/** dweight[ids[r], start:end] += dy[r, start:end] for every row r (dweight zeroed by the caller). */
export function embedding_grad(dy: usize, ids: usize, dweight: usize, N: i32, D: i32, V: i32, start: i32, end: i32, scratch: usize): i32 {
  for (let r = 0; r < N; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    if (id < 0 || id >= V) return 1;
  }
  const c = <usize>start << 2;
  for (let r = 0; r < N; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    addRow(dweight + ((<usize>id * <usize>D) << 2) + c, dy + ((<usize>r * <usize>D) << 2) + c, end - start);
  }
  return 0;
}
