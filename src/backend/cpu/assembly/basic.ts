// Simple memory kernels: fill and copy of f32/i32 buffers.

/** out[i] = value for i in [start, end). */
export function fill_f32(out: usize, value: f32, start: i32, end: i32, scratch: usize): i32 {
  for (let i = start; i < end; i++) store<f32>(out + (<usize>i << 2), value);
  return 0;
}
