// bfloat16 frozen weights on the CPU (assembly/bf16.ts, assembly/matmul.ts): a matmul whose B
// operand is bf16 reads B directly, widening each value exactly (its bits become the top half of
// an f32) where the kernel packs or loads B, so the weight stays 16-bit at rest, no widened copy
// is made, and the products accumulate in f32 exactly as the f32 kernel's do on the widened
// values. The native addon does the same in its packing (native.ts, nativeMatmulBf16B).
import { runMatmul, type MatmulArgs } from './matmul.js';
import type { KernelRuntime } from '../runtime.js';
import { runElements, runRows } from './split.js';

/** dst[i] = f32(src[i]) for i < n (src: bf16 bits, dst: f32; byte addresses). */
export function bf16ToF32(rt: KernelRuntime, src: number, dst: number, n: number): void {
  runElements(rt, 'bf16_to_f32', [src, dst, n], n);
}

/** out[r] = f32(weight[ids[r]]): weight [V, D] bf16, ids [N] i32, out [N, D] f32. */
export function embeddingBf16(
  rt: KernelRuntime,
  weight: number,
  ids: number,
  out: number,
  N: number,
  D: number,
  V: number,
): void {
  runRows(rt, 'embedding_bf16', [weight, ids, out, N, D, V], N, D);
}

/**
 * C (+)= op(A) op(B) with A, C f32 and B bf16 bits (MatmulArgs, with ldb and strideB counted in
 * bf16 elements) by the WebAssembly kernel: B is widened exactly as the kernel reads it, so C is
 * bit for bit matmulF32's on the widened B. Small products stay on one thread as in matmulF32.
 */
export function matmulBf16B(rt: KernelRuntime, p: MatmulArgs, minParallelMadds?: number): void {
  runMatmul(rt, p, 'matmulBf16B', 'matmul_bf16b', 2, minParallelMadds);
}
