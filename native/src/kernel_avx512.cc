// AVX-512 micro-kernel, 14 x 32: 28 zmm accumulators (14 rows x 2 vectors of 16 columns), two
// vectors of B and one broadcast of A per k: 28 FMAs for 16 loads. Compiled with a function-level
// target so that the binary still loads on CPUs without AVX-512 (gemm.cc checks before use).
#include "gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace tsdpo {
namespace {

constexpr int MR = 14, NR = 32;

__attribute__((target("avx512f,fma"))) void run(
    int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool add) {
  __m512 lo[MR], hi[MR];
#pragma GCC unroll 14
  for (int r = 0; r < MR; r++) lo[r] = hi[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
    _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
      const __m512 a = _mm512_set1_ps(ap[r]);
      lo[r] = _mm512_fmadd_ps(a, b0, lo[r]);
      hi[r] = _mm512_fmadd_ps(a, b1, hi[r]);
    }
    ap += MR;
    bp += NR;
  }
  if (m == MR && n == NR) {
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
      float* row = c + r * ldc;
      if (add) {
        lo[r] = _mm512_add_ps(_mm512_loadu_ps(row), lo[r]);
        hi[r] = _mm512_add_ps(_mm512_loadu_ps(row + 16), hi[r]);
      }
      _mm512_storeu_ps(row, lo[r]);
      _mm512_storeu_ps(row + 16, hi[r]);
    }
    return;
  }
  // Edge tile: masked columns, rows < m.
  const __mmask16 m0 = n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? 0xffff : n <= 16 ? 0 : static_cast<__mmask16>((1u << (n - 16)) - 1);
#pragma GCC unroll 14
  for (int r = 0; r < MR; r++) {
    if (r >= m) break;
    float* row = c + r * ldc;
    if (add) {
      lo[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), lo[r]);
      hi[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row + 16), hi[r]);
    }
    _mm512_mask_storeu_ps(row, m0, lo[r]);
    _mm512_mask_storeu_ps(row + 16, m1, hi[r]);
  }
}

const MicroKernel KERNEL = {"avx512", MR, NR, MR * 12, run};

}  // namespace

const MicroKernel* kernel_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") ? &KERNEL : nullptr;
}

}  // namespace tsdpo

#else
namespace tsdpo {
const MicroKernel* kernel_avx512() { return nullptr; }
}  // namespace tsdpo
#endif
