// Packing of op(A) and op(B) into the panels the micro-kernels read (gemm.h, MicroKernel):
//   A panel: out[k * mr + r] = op(A)[i0 + r, k0 + k] for r < rows, zero for rows <= r < mr
//   B panel: out[k * nr + j] = op(B)[k0 + k, j0 + j] for j < cols, zero for cols <= j < nr
// with op(A)[i, k] = transA ? a[k * lda + i] : a[i * lda + k], op(B)[k, j] likewise.
#pragma once

#include <cstdint>

namespace tsdpo {

void pack_a(int mr, int64_t kb, int64_t rows, const float* a, int64_t lda, bool transA,
            int64_t i0, int64_t k0, float* out);
void pack_b(int nr, int64_t kb, int64_t cols, const float* b, int64_t ldb, bool transB,
            int64_t k0, int64_t j0, float* out);

}  // namespace tsdpo
