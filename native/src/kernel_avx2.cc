// AVX2 + FMA micro-kernel, 6 x 16: 12 ymm accumulators (6 rows x 2 vectors of 8 columns), the
// classic Haswell shape. Function-level target, checked at run time by kernel_avx2().
#include "gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace tsdpo {
namespace {

constexpr int MR = 6, NR = 16;

__attribute__((target("avx2,fma"))) void run(
    int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool add) {
  __m256 lo[MR], hi[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      const __m256 a = _mm256_broadcast_ss(ap + r);
      lo[r] = _mm256_fmadd_ps(a, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(a, b1, hi[r]);
    }
    ap += MR;
    bp += NR;
  }
  if (m == MR && n == NR) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      float* row = c + r * ldc;
      if (add) {
        lo[r] = _mm256_add_ps(_mm256_loadu_ps(row), lo[r]);
        hi[r] = _mm256_add_ps(_mm256_loadu_ps(row + 8), hi[r]);
      }
      _mm256_storeu_ps(row, lo[r]);
      _mm256_storeu_ps(row + 8, hi[r]);
    }
    return;
  }
  // Edge tile: through a small buffer, same additions as above.
  alignas(32) float tile[MR][NR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    _mm256_store_ps(tile[r], lo[r]);
    _mm256_store_ps(tile[r] + 8, hi[r]);
  }
  for (int r = 0; r < m; r++) {
    float* row = c + r * ldc;
    for (int j = 0; j < n; j++) row[j] = add ? row[j] + tile[r][j] : tile[r][j];
  }
}

const MicroKernel KERNEL = {"avx2", MR, NR, MR * 24, run};

}  // namespace

const MicroKernel* kernel_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &KERNEL : nullptr;
}

}  // namespace tsdpo

#else
namespace tsdpo {
const MicroKernel* kernel_avx2() { return nullptr; }
}  // namespace tsdpo
#endif
