// Row walker shared by the strided kernels (binary, where, copy_strided): visits the rows of a
// [d0, ..., d(ndim-2), L] index space in order, keeping each operand's element offset of the row.
// meta = [shape(ndim), strides_0(ndim), ..., strides_(k-1)(ndim)] (int32, elements). The row
// index and the k offsets live in the thread's scratch area (not exported from index.ts).

/** Scratch layout: idx[0..ndim) at scratch, offsets[0..k) at scratch + 256. */
@inline export function offsetsAt(scratch: usize): usize {
  return scratch + 256;
}

@inline export function metaAt(meta: usize, list: i32, ndim: i32, d: i32): i32 {
  return load<i32>(meta + ((<usize>(list * ndim + d)) << 2));
}

/** Sets idx and the k offsets to those of row `row`. */
export function walkStart(meta: usize, ndim: i32, k: i32, row: i32, scratch: usize): void {
  const offs = offsetsAt(scratch);
  for (let j = 0; j < k; j++) store<i32>(offs + (<usize>j << 2), 0);
  let rem = row;
  for (let d = ndim - 2; d >= 0; d--) {
    const n = metaAt(meta, 0, ndim, d);
    const i = rem % n;
    rem = rem / n;
    store<i32>(scratch + (<usize>d << 2), i);
    for (let j = 0; j < k; j++) {
      const p = offs + (<usize>j << 2);
      store<i32>(p, load<i32>(p) + i * metaAt(meta, j + 1, ndim, d));
    }
  }
}

/** Advances idx and the offsets to the next row (odometer over dims ndim-2 .. 0). */
export function walkNext(meta: usize, ndim: i32, k: i32, scratch: usize): void {
  const offs = offsetsAt(scratch);
  for (let d = ndim - 2; d >= 0; d--) {
    const n = metaAt(meta, 0, ndim, d);
    const pi = scratch + (<usize>d << 2);
    const i = load<i32>(pi) + 1;
    if (i < n) {
      store<i32>(pi, i);
      for (let j = 0; j < k; j++) {
        const p = offs + (<usize>j << 2);
        store<i32>(p, load<i32>(p) + metaAt(meta, j + 1, ndim, d));
      }
      return;
    }
    store<i32>(pi, 0);
    for (let j = 0; j < k; j++) {
      const p = offs + (<usize>j << 2);
      store<i32>(p, load<i32>(p) - (n - 1) * metaAt(meta, j + 1, ndim, d));
    }
  }
}

/** Offset of operand j for the current row. */
@inline export function offsetOf(scratch: usize, j: i32): i32 {
  return load<i32>(offsetsAt(scratch) + (<usize>j << 2));
}

/** Byte address of element `off` (may be negative) of an array at `base`. */
@inline export function addr(base: usize, off: i32): usize {
  return base + <usize>(<isize>off << 2);
}
