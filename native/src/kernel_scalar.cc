// Portable micro-kernel, 4 x 8, for CPUs without AVX2 + FMA (and other architectures). std::fma
// keeps the summation bit-identical to the SIMD kernels (on x86 without FMA it is slow: glibc
// emulates it — such CPUs should rather use the WebAssembly kernels).
#include <cmath>

#include "gemm.h"

namespace tsdpo {
namespace {

constexpr int MR = 4, NR = 8;

void run(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool add) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; k++) {
    for (int r = 0; r < MR; r++) {
      for (int j = 0; j < NR; j++) acc[r][j] = std::fma(ap[r], bp[j], acc[r][j]);
    }
    ap += MR;
    bp += NR;
  }
  for (int r = 0; r < m; r++) {
    float* row = c + r * ldc;
    for (int j = 0; j < n; j++) row[j] = add ? row[j] + acc[r][j] : acc[r][j];
  }
}

const MicroKernel KERNEL = {"scalar", MR, NR, MR * 32, run};

}  // namespace

const MicroKernel* kernel_scalar() { return &KERNEL; }

}  // namespace tsdpo
