// Reduction of the middle axis of an [outer, red, inner] view: op 0 sum, 1 max (NaN propagates).
// Work unit: output elements (outer x inner). inner == 1 reduces contiguous rows with four
// vector accumulators; otherwise 32 (then 4, then 1) columns at a time walk down the rows.

@inline function comb(op: i32, a: v128, b: v128): v128 {
  return op == 0 ? f32x4.add(a, b) : f32x4.max(a, b);
}

@inline function rowReduce(op: i32, p: usize, red: i32): f32 {
  const init = f32x4.splat(op == 0 ? 0 : -Infinity);
  let a0 = init, a1 = init, a2 = init, a3 = init;
  let r = 0;
  for (; r + 16 <= red; r += 16) {
    const q = p + (<usize>r << 2);
    a0 = comb(op, a0, v128.load(q));
    a1 = comb(op, a1, v128.load(q + 16));
    a2 = comb(op, a2, v128.load(q + 32));
    a3 = comb(op, a3, v128.load(q + 48));
  }
  for (; r + 4 <= red; r += 4) a0 = comb(op, a0, v128.load(p + (<usize>r << 2)));
  for (; r < red; r++) a0 = comb(op, a0, f32x4.replace_lane(init, 0, load<f32>(p + (<usize>r << 2))));
  const s = comb(op, comb(op, a0, a1), comb(op, a2, a3));
  const h = comb(op, s, v128.shuffle<i32>(s, s, 2, 3, 0, 1));
  return f32x4.extract_lane(comb(op, h, v128.shuffle<i32>(h, h, 1, 0, 3, 2)), 0);
}

/** Columns [i0, i1) of one outer slice: x at p (row stride inner), out at q. */
@inline function colsReduce(op: i32, p: usize, q: usize, red: i32, inner: i32, i0: i32, i1: i32): void {
  const init = f32x4.splat(op == 0 ? 0 : -Infinity);
  const stride = <usize>inner << 2;
  let i = i0;
  for (; i + 32 <= i1; i += 32) {
    let a0 = init, a1 = init, a2 = init, a3 = init, a4 = init, a5 = init, a6 = init, a7 = init;
    let s = p + (<usize>i << 2);
    for (let r = 0; r < red; r++) {
      a0 = comb(op, a0, v128.load(s));
      a1 = comb(op, a1, v128.load(s + 16));
      a2 = comb(op, a2, v128.load(s + 32));
      a3 = comb(op, a3, v128.load(s + 48));
      a4 = comb(op, a4, v128.load(s + 64));
      a5 = comb(op, a5, v128.load(s + 80));
      a6 = comb(op, a6, v128.load(s + 96));
      a7 = comb(op, a7, v128.load(s + 112));
      s += stride;
    }
    const o = q + (<usize>i << 2);
    v128.store(o, a0); v128.store(o + 16, a1); v128.store(o + 32, a2); v128.store(o + 48, a3);
    v128.store(o + 64, a4); v128.store(o + 80, a5); v128.store(o + 96, a6); v128.store(o + 112, a7);
  }
  for (; i + 4 <= i1; i += 4) {
    let a = init;
    let s = p + (<usize>i << 2);
    for (let r = 0; r < red; r++) { a = comb(op, a, v128.load(s)); s += stride; }
    v128.store(q + (<usize>i << 2), a);
  }
  for (; i < i1; i++) {
    let a = init;
    let s = p + (<usize>i << 2);
    for (let r = 0; r < red; r++) { a = comb(op, a, f32x4.splat(load<f32>(s))); s += stride; }
    store<f32>(q + (<usize>i << 2), f32x4.extract_lane(a, 0));
  }
}

@inline function reduceRange(op: i32, x: usize, out: usize, red: i32, inner: i32, start: i32, end: i32): void {
  if (inner == 1) {
    for (let o = start; o < end; o++) store<f32>(out + (<usize>o << 2), rowReduce(op, x + (<usize>o * <usize>red << 2), red));
    return;
  }
  // units u = o * inner + i; walk the outer slices the range touches
  let u = start;
  while (u < end) {
    const o = u / inner, i0 = u - o * inner;
    const i1 = min(inner, i0 + (end - u));
    colsReduce(op, x + ((<usize>o * <usize>red * <usize>inner) << 2), out + ((<usize>o * <usize>inner) << 2), red, inner, i0, i1);
    u += i1 - i0;
  }
}

/** out[o, i] = reduce_r x[o, r, i]; x [outer, red, inner], out [outer, inner]. */
export function reduce(op: i32, x: usize, out: usize, outer: i32, red: i32, inner: i32, start: i32, end: i32, scratch: usize): i32 {
  if (op == 0) reduceRange(0, x, out, red, inner, start, end);
  else if (op == 1) reduceRange(1, x, out, red, inner, start, end);
  else return 3;
  return 0;
}
