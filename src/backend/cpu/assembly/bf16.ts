// bfloat16 frozen weights (work unit: elements or rows). A bf16 value is the top half of an
// f32, so widening is exact: shift the 16 bits up. Matmuls with a bf16 B widen it as they read it
// (matmul.ts, `matmul_bf16b`); embedding widens the gathered rows; bf16_to_f32 widens a buffer.

/** dst[i] = f32(src[i]) for i in [start, end): src bf16 bits, dst f32. */
export function bf16_to_f32(src: usize, dst: usize, n: i32, start: i32, end: i32, scratch: usize): i32 {
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const s = src + (<usize>i << 1), d = dst + (<usize>i << 2);
    v128.store(d, i32x4.shl(v128.load16x4_u(s), 16));
    v128.store(d, i32x4.shl(v128.load16x4_u(s, 8), 16), 16);
  }
  for (; i < end; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
  return 0;
}

/** out[r] = f32(weight[ids[r]]); weight [V, D] bf16 bits, out [N, D] f32. Error 1 for an id outside [0, V). */
export function embedding_bf16(weight: usize, ids: usize, out: usize, N: i32, D: i32, V: i32, start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    if (id < 0 || id >= V) return 1;
  }
  for (let r = start; r < end; r++) {
    const id = load<i32>(ids + (<usize>r << 2));
    const s = weight + ((<usize>id * <usize>D) << 1), d = out + ((<usize>r * <usize>D) << 2);
    let j = 0;
    for (; j + 4 <= D; j += 4) v128.store(d + (<usize>j << 2), i32x4.shl(v128.load16x4_u(s + (<usize>j << 1)), 16));
    for (; j < D; j++) store<u32>(d + (<usize>j << 2), <u32>load<u16>(s + (<usize>j << 1)) << 16);
  }
  return 0;
}
