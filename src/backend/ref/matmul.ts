// Reference matrix multiply (docs/kernels.md, `matmul`): batched C[i] (+)= op(A[i]) op(B[i]) over
// row-major typed arrays, written for clarity; the truth the WebAssembly kernel is tested against.
import type { F } from './types.js';

/**
 * For each batch element i: C_i (M x N) = op(A_i) (M x K) * op(B_i) (K x N), or C_i += ... when
 * `accumulate` is 1.
 *
 * Storage (row-major, strides in elements): A is [M, K] with row stride `lda`, or [K, M] when
 * `transA` is 1 (op(A) = A^T); B is [K, N] (row stride `ldb`), or [N, K] when `transB` is 1; C is
 * [M, N] with row stride `ldc`. Batch element i starts at i * strideA (B, C likewise); a batch
 * stride of 0 broadcasts that operand. Each sum runs in float64 (JS numbers) and is stored in C's
 * type, so Float64Arrays give a float64 truth.
 */
export function matmul(
  a: F,
  b: F,
  c: F,
  M: number,
  N: number,
  K: number,
  lda: number,
  ldb: number,
  ldc: number,
  transA: number,
  transB: number,
  accumulate: number,
  batch: number,
  strideA: number,
  strideB: number,
  strideC: number,
): void {
  for (let bi = 0; bi < batch; bi++) {
    const a0 = bi * strideA,
      b0 = bi * strideB,
      c0 = bi * strideC;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const aik = transA ? a[a0 + k * lda + i] : a[a0 + i * lda + k];
          const bkj = transB ? b[b0 + j * ldb + k] : b[b0 + k * ldb + j];
          sum += aik * bkj;
        }
        const at = c0 + i * ldc + j;
        c[at] = accumulate ? c[at] + sum : sum;
      }
    }
  }
}
