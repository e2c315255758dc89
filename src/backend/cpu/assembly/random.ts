// Dropout masks from a counter-based hash (the same as src/backend/ref/random.ts): element i's
// draw depends only on (seed, i), so any thread split gives the same mask. Work unit: elements.

/** Wellons' lowbias32 on 4 lanes (i32x4.mul keeps the low 32 bits, as Math.imul). */
@inline function mix4(x: v128): v128 {
  x = v128.xor(x, i32x4.shr_u(x, 16));
  x = i32x4.mul(x, i32x4.splat(0x7feb352d));
  x = v128.xor(x, i32x4.shr_u(x, 15));
  x = i32x4.mul(x, i32x4.splat(0x846ca68b));
  return v128.xor(x, i32x4.shr_u(x, 16));
}

@inline function mix32(x: u32): u32 {
  return i32x4.extract_lane(mix4(i32x4.splat(x)), 0);
}

/**
 * out[i] = 1 / (1 - p) where hash24(seed, i) >= ceil(p 2^24), else 0; hash24 = the top 24 bits
 * of mix(mix(i ^ k) + k), k = mix(seed + 0x9e3779b9).
 */
export function dropout_mask(out: usize, n: i32, p: f64, seed: u32, start: i32, end: i32, scratch: usize): i32 {
  const k = i32x4.splat(mix32(seed + 0x9e3779b9));
  const threshold = i32x4.splat(<i32>Math.ceil(p * 16777216.0));
  const scale = f32x4.splat(<f32>(1.0 / (1.0 - p)));
  const zero = f32x4.splat(0);
  let idx = i32x4.add(i32x4.splat(start), i32x4(0, 1, 2, 3));
  for (let i = start; i < end; i += 4) {
    const h = i32x4.shr_u(mix4(i32x4.add(mix4(v128.xor(idx, k)), k)), 8);
    const v = v128.bitselect(scale, zero, i32x4.ge_u(h, threshold));
    const o = out + (<usize>i << 2);
    if (i + 4 <= end) v128.store(o, v);
    else {
      store<f32>(o, f32x4.extract_lane(v, 0));
      if (i + 1 < end) store<f32>(o + 4, f32x4.extract_lane(v, 1));
      if (i + 2 < end) store<f32>(o + 8, f32x4.extract_lane(v, 2));
    }
    idx = i32x4.add(idx, i32x4.splat(4));
  }
  return 0;
}
