// Element types: f32 for training, f64 for gradient checks (CPU only), i32 for token ids, bf16 for
// frozen weights (stored as the checkpoint's 16-bit patterns, read only by matmul / linear as the
// weight operand and by embedding, which compute in f32; host reads give f32).
export type DType = 'f32' | 'f64' | 'i32' | 'bf16';
export type TypedArray = Float32Array | Float64Array | Int32Array;

export const BYTES: Record<DType, number> = { f32: 4, f64: 8, i32: 4, bf16: 2 };

export function isFloat(dtype: DType): boolean {
  return dtype !== 'i32';
}

/** A new typed array of `dtype` holding `size` elements (copied from `data` when given). */
export function makeArray(dtype: DType, sizeOrData: number | ArrayLike<number>): TypedArray {
  switch (dtype) {
    case 'f32':
    case 'bf16':
      return typeof sizeOrData === 'number' ? new Float32Array(sizeOrData) : Float32Array.from(sizeOrData);
    case 'f64':
      return typeof sizeOrData === 'number' ? new Float64Array(sizeOrData) : Float64Array.from(sizeOrData);
    case 'i32':
      return typeof sizeOrData === 'number' ? new Int32Array(sizeOrData) : Int32Array.from(sizeOrData);
  }
}

export function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Float64Array) return 'f64';
  return 'i32';
}
