// Packing routines (pack.h). Two cases per operand: the panel's short side is contiguous in
// memory (a copy per k), or its k side is (a transpose, done in 8 x 8 blocks).
#include "pack.h"

#include <cstring>

namespace tsdpo {
namespace {

/** out[k * W + r] = src[r * ld + k] for r < rows (zero-padded to W), k < kb: a transposing pack. */
template <int W>
void pack_transpose(int64_t kb, int64_t rows, const float* src, int64_t ld, float* out) {
  if (rows == W) {
    int64_t k = 0;
    for (; k + 8 <= kb; k += 8) {
      for (int r = 0; r < W; r++) {
        const float* s = src + r * ld + k;
        for (int q = 0; q < 8; q++) out[(k + q) * W + r] = s[q];
      }
    }
    for (; k < kb; k++) {
      for (int r = 0; r < W; r++) out[k * W + r] = src[r * ld + k];
    }
    return;
  }
  for (int64_t k = 0; k < kb; k++) {
    for (int r = 0; r < W; r++) out[k * W + r] = r < rows ? src[r * ld + k] : 0.0f;
  }
}

/** out[k * W + r] = src[k * ld + r] for r < rows (zero-padded to W): a copying pack. */
template <int W>
void pack_copy(int64_t kb, int64_t rows, const float* src, int64_t ld, float* out) {
  if (rows == W) {
    for (int64_t k = 0; k < kb; k++) std::memcpy(out + k * W, src + k * ld, W * sizeof(float));
    return;
  }
  for (int64_t k = 0; k < kb; k++) {
    for (int r = 0; r < W; r++) out[k * W + r] = r < rows ? src[k * ld + r] : 0.0f;
  }
}

template <int W>
void pack(int64_t kb, int64_t rows, const float* src, int64_t ld, bool kContiguous, float* out) {
  if (kContiguous) pack_transpose<W>(kb, rows, src, ld, out);
  else pack_copy<W>(kb, rows, src, ld, out);
}

void pack_any(int w, int64_t kb, int64_t rows, const float* src, int64_t ld, bool kContiguous, float* out) {
  switch (w) {
    case 4: return pack<4>(kb, rows, src, ld, kContiguous, out);
    case 6: return pack<6>(kb, rows, src, ld, kContiguous, out);
    case 8: return pack<8>(kb, rows, src, ld, kContiguous, out);
    case 14: return pack<14>(kb, rows, src, ld, kContiguous, out);
    case 16: return pack<16>(kb, rows, src, ld, kContiguous, out);
    case 32: return pack<32>(kb, rows, src, ld, kContiguous, out);
    default: __builtin_trap();  // a micro-kernel shape without a packer
  }
}

}  // namespace

void pack_a(int mr, int64_t kb, int64_t rows, const float* a, int64_t lda, bool transA,
            int64_t i0, int64_t k0, float* out) {
  // op(A)[i, k]: k is contiguous unless A is stored transposed.
  if (transA) pack_any(mr, kb, rows, a + k0 * lda + i0, lda, false, out);
  else pack_any(mr, kb, rows, a + i0 * lda + k0, lda, true, out);
}

void pack_b(int nr, int64_t kb, int64_t cols, const float* b, int64_t ldb, bool transB,
            int64_t k0, int64_t j0, float* out) {
  if (transB) pack_any(nr, kb, cols, b + j0 * ldb + k0, ldb, true, out);
  else pack_any(nr, kb, cols, b + k0 * ldb + j0, ldb, false, out);
}

}  // namespace tsdpo
