// Array types of the reference kernels: float data in float32 or float64, indices in int32.
export type F = Float32Array | Float64Array;
export type I = Int32Array;
