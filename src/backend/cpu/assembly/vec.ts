// Small vector helpers shared by the row kernels (not exported from index.ts): partial loads and
// stores for row tails, sums and dot products with four accumulators, copies.

/** The first k (< 4) floats at p in lanes 0..k-1, `fill` in the others. */
@inline export function loadPartial(p: usize, k: i32, fill: f32): v128 {
  let v = f32x4.splat(fill);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (k > 1) v = f32x4.replace_lane(v, 1, load<f32>(p + 4));
  if (k > 2) v = f32x4.replace_lane(v, 2, load<f32>(p + 8));
  return v;
}

/** Stores lanes 0..k-1 (k < 4) of v at p. */
@inline export function storePartial(p: usize, v: v128, k: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (k > 1) store<f32>(p + 4, f32x4.extract_lane(v, 1));
  if (k > 2) store<f32>(p + 8, f32x4.extract_lane(v, 2));
}

@inline export function hsum4(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** sum of n floats at p. */
export function sumRow(p: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const q = p + (<usize>j << 2);
    a0 = f32x4.add(a0, v128.load(q));
    a1 = f32x4.add(a1, v128.load(q + 16));
    a2 = f32x4.add(a2, v128.load(q + 32));
    a3 = f32x4.add(a3, v128.load(q + 48));
  }
  for (; j + 4 <= n; j += 4) a0 = f32x4.add(a0, v128.load(p + (<usize>j << 2)));
  if (j < n) a1 = f32x4.add(a1, loadPartial(p + (<usize>j << 2), n - j, 0));
  return hsum4(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
}

/** sum of a[i] b[i] over n floats. */
export function dotRow(a: usize, b: usize, n: i32): f32 {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const o = <usize>j << 2;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(a + o + 16), v128.load(b + o + 16)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(a + o + 32), v128.load(b + o + 32)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(a + o + 48), v128.load(b + o + 48)));
  }
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  if (j < n) {
    const o = <usize>j << 2;
    a1 = f32x4.add(a1, f32x4.mul(loadPartial(a + o, n - j, 0), loadPartial(b + o, n - j, 0)));
  }
  return hsum4(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
}

/**
 * max of n floats at p (-inf for n = 0). pmax, one instruction, may drop NaNs: for the softmax
 * kernels, whose exp(x - max) turns a NaN element into a NaN sum anyway; not for reduce max.
 */
export function maxRow(p: usize, n: i32): f32 {
  let a0 = f32x4.splat(-Infinity), a1 = a0, a2 = a0, a3 = a0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const q = p + (<usize>j << 2);
    a0 = f32x4.pmax(a0, v128.load(q));
    a1 = f32x4.pmax(a1, v128.load(q + 16));
    a2 = f32x4.pmax(a2, v128.load(q + 32));
    a3 = f32x4.pmax(a3, v128.load(q + 48));
  }
  for (; j + 4 <= n; j += 4) a0 = f32x4.pmax(a0, v128.load(p + (<usize>j << 2)));
  if (j < n) a1 = f32x4.pmax(a1, loadPartial(p + (<usize>j << 2), n - j, -Infinity));
  const m = f32x4.pmax(f32x4.pmax(a0, a1), f32x4.pmax(a2, a3));
  const h = f32x4.pmax(m, v128.shuffle<i32>(m, m, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmax(h, v128.shuffle<i32>(h, h, 1, 0, 3, 2)), 0);
}

/** Copies n floats (any alignment; the ranges must not overlap). */
export function copyRow(dst: usize, src: usize, n: i32): void {
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const o = <usize>j << 2;
    v128.store(dst + o, v128.load(src + o));
    v128.store(dst + o + 16, v128.load(src + o + 16));
    v128.store(dst + o + 32, v128.load(src + o + 32));
    v128.store(dst + o + 48, v128.load(src + o + 48));
  }
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
  for (; j < n; j++) store<f32>(dst + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
}

/** dst[j] += src[j] for n floats. */
export function addRow(dst: usize, src: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o)));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o));
  }
}

/** Zeroes n floats. */
export function zeroRow(dst: usize, n: i32): void {
  const z = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), z);
  for (; j < n; j++) store<f32>(dst + (<usize>j << 2), 0);
}
