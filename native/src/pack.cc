// Packing routines (pack.h). Two cases per operand: the panel's short side is contiguous in
// memory (a copy per k), or its k side is (a transpose, done in 8 x 8 blocks). Each routine is a
// template over the stored element: float, or uint16_t holding bfloat16 bits (B only), which
// widen() and the vector loads turn into the float with those top 16 bits, exactly.
#include "pack.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tsdpo {
namespace {

/** The float a stored element stands for: itself, or the bfloat16 bits as a float's top half. */
inline float widen(float x) { return x; }
inline float widen(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

#if defined(__x86_64__)
/** 8 consecutive elements at p as floats (bfloat16: zero-extend to 32 bits, shift into the top half). */
__attribute__((target("avx2"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2"))) inline __m256 load8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

/** out[k * W + r] = src[r * ld + k] for W full rows, with 8 x 8 AVX transposes (k tail scalar). */
template <int W, typename T>
__attribute__((target("avx2"))) void pack_transpose_avx2(int64_t kb, const T* src, int64_t ld, float* out) {
  constexpr int LAST = W % 8;  // rows in the last, partial, block of 8
  const __m256i lastMask = _mm256_cmpgt_epi32(_mm256_set1_epi32(LAST), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  int64_t k = 0;
  for (; k + 8 <= kb; k += 8) {
    for (int r0 = 0; r0 < W; r0 += 8) {
      __m256 v[8];
      for (int q = 0; q < 8; q++) v[q] = r0 + q < W ? load8(src + (r0 + q) * ld + k) : _mm256_setzero_ps();
      // 8 x 8 transpose: v[q] holds row r0 + q at k .. k + 7; afterwards k + q at rows r0 .. r0 + 7.
      const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
      const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
      const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
      const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
      const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
      const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
      const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
      const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
      v[0] = _mm256_permute2f128_ps(s0, s4, 0x20), v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
      v[2] = _mm256_permute2f128_ps(s2, s6, 0x20), v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
      v[4] = _mm256_permute2f128_ps(s0, s4, 0x31), v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
      v[6] = _mm256_permute2f128_ps(s2, s6, 0x31), v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
      for (int q = 0; q < 8; q++) {
        float* o = out + (k + q) * W + r0;
        if (LAST == 0 || r0 + 8 <= W) _mm256_storeu_ps(o, v[q]);
        else _mm256_maskstore_ps(o, lastMask, v[q]);
      }
    }
  }
  for (; k < kb; k++) {
    for (int r = 0; r < W; r++) out[k * W + r] = widen(src[r * ld + k]);
  }
}

/** out[k * W + r] = src[k * ld + r] for W full columns of bfloat16, 8 widened per vector. */
template <int W>
__attribute__((target("avx2"))) void pack_copy_bf16_avx2(int64_t kb, const uint16_t* src, int64_t ld, float* out) {
  static_assert(W % 8 == 0, "whole vectors of 8 columns");
  for (int64_t k = 0; k < kb; k++) {
    for (int r = 0; r < W; r += 8) _mm256_storeu_ps(out + k * W + r, load8(src + k * ld + r));
  }
}

bool has_avx2() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
  }();
  return yes;
}
#endif

/** out[k * W + r] = src[r * ld + k] for r < rows (zero-padded to W), k < kb: a transposing pack. */
template <int W, typename T>
void pack_transpose(int64_t kb, int64_t rows, const T* src, int64_t ld, float* out) {
  if (rows == W) {
#if defined(__x86_64__)
    if (W >= 6 && has_avx2()) return pack_transpose_avx2<W>(kb, src, ld, out);
#endif
    int64_t k = 0;
    for (; k + 8 <= kb; k += 8) {
      for (int r = 0; r < W; r++) {
        const T* s = src + r * ld + k;
        for (int q = 0; q < 8; q++) out[(k + q) * W + r] = widen(s[q]);
      }
    }
    for (; k < kb; k++) {
      for (int r = 0; r < W; r++) out[k * W + r] = widen(src[r * ld + k]);
    }
    return;
  }
  for (int64_t k = 0; k < kb; k++) {
    for (int r = 0; r < W; r++) out[k * W + r] = r < rows ? widen(src[r * ld + k]) : 0.0f;
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
void pack_copy(int64_t kb, int64_t rows, const uint16_t* src, int64_t ld, float* out) {
  if (rows == W) {
#if defined(__x86_64__)
    if constexpr (W % 8 == 0) {
      if (has_avx2()) return pack_copy_bf16_avx2<W>(kb, src, ld, out);
    }
#endif
    for (int64_t k = 0; k < kb; k++) {
      for (int r = 0; r < W; r++) out[k * W + r] = widen(src[k * ld + r]);
    }
    return;
  }
  for (int64_t k = 0; k < kb; k++) {
    for (int r = 0; r < W; r++) out[k * W + r] = r < rows ? widen(src[k * ld + r]) : 0.0f;
  }
}

template <int W, typename T>
void pack(int64_t kb, int64_t rows, const T* src, int64_t ld, bool kContiguous, float* out) {
  if (kContiguous) pack_transpose<W>(kb, rows, src, ld, out);
  else pack_copy<W>(kb, rows, src, ld, out);
}

template <typename T>
void pack_any(int w, int64_t kb, int64_t rows, const T* src, int64_t ld, bool kContiguous, float* out) {
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

template <typename T>
void pack_b_as(int nr, int64_t kb, int64_t cols, const T* b, int64_t ldb, bool transB, int64_t k0, int64_t j0,
               float* out) {
  if (transB) pack_any(nr, kb, cols, b + j0 * ldb + k0, ldb, true, out);
  else pack_any(nr, kb, cols, b + k0 * ldb + j0, ldb, false, out);
}

}  // namespace

void pack_a(int mr, int64_t kb, int64_t rows, const float* a, int64_t lda, bool transA,
            int64_t i0, int64_t k0, float* out) {
  // op(A)[i, k]: k is contiguous unless A is stored transposed.
  if (transA) pack_any(mr, kb, rows, a + k0 * lda + i0, lda, false, out);
  else pack_any(mr, kb, rows, a + i0 * lda + k0, lda, true, out);
}

void pack_b(int nr, int64_t kb, int64_t cols, const void* b, bool bf16, int64_t ldb, bool transB,
            int64_t k0, int64_t j0, float* out) {
  if (bf16) pack_b_as(nr, kb, cols, static_cast<const uint16_t*>(b), ldb, transB, k0, j0, out);
  else pack_b_as(nr, kb, cols, static_cast<const float*>(b), ldb, transB, k0, j0, out);
}

}  // namespace tsdpo
