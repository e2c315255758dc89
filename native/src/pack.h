// Packing of op(A) and op(B) into the panels the micro-kernels read (gemm.h, MicroKernel):
//   A panel: out[k * mr + r] = op(A)[i0 + r, k0 + k] for r < rows, zero for rows <= r < mr
//   B panel: out[k * nr + j] = op(B)[k0 + k, j0 + j] for j < cols, zero for cols <= j < nr
// with op(A)[i, k] = transA ? a[k * lda + i] : a[i * lda + k], op(B)[k, j] likewise.
// B may be stored in bfloat16 (GemmArgs::bBf16): its values are widened to float32 exactly (the
// 16 bits become the top half of the float) while packing, so the panels, and every product
// computed from them, are those of the float32 matrix holding the widened values.
#pragma once

#include <cstdint>

namespace tsdpo {

void pack_a(int mr, int64_t kb, int64_t rows, const float* a, int64_t lda, bool transA,
            int64_t i0, int64_t k0, float* out);
/** `b` points to float32 elements, or to bfloat16 bits (uint16_t) when `bf16` is set. */
void pack_b(int nr, int64_t kb, int64_t cols, const void* b, bool bf16, int64_t ldb, bool transB,
            int64_t k0, int64_t j0, float* out);

}  // namespace tsdpo
