// Fused attention (attention.h) from the matrix multiply and per-row passes. A work unit takes a
// block of up to QB queries of one head; the block at positions p0 .. p_last sees keys
// [jlo, jhi) (jhi = p_last + 1 when causal, jlo = p0 - window + 1 with a window), so causal
// attention skips the keys above the diagonal block. Per block, with tiles [rows, nk] in
// thread-local memory (row stride ldt: nk rounded up to 16):
//
//   forward   S = Q K^T;  P = softmax rows (attention_rows.inc);  O = P V
//   backward  S = Q K^T;  dP = dO V^T;  P, dS = scale P (dP - D) rows;  dV += P^T dO;
//             dQ = dS K;  dK += dS^T Q            (D = rowsum(dO * O), FlashAttention-2's order)
//
// Each product runs gemm_serial (gemm.h); units are claimed from an atomic counter, and each one's
// summation order is fixed, so results do not depend on the threads.
#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "buffer.h"
#include "gemm.h"
#include "pool.h"

namespace tsdpo {

// The row passes, compiled once per instruction set (16-float vectors are split into halves or
// quarters below AVX-512). They use no fused multiply-adds, so all three give the same bits.
#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,fma"))), apply_to = function)
namespace rows_avx512 {
#include "attention_rows.inc"
}
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
namespace rows_avx2 {
#include "attention_rows.inc"
}
#pragma clang attribute pop
#elif defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
namespace rows_avx512 {
#include "attention_rows.inc"
}
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace rows_avx2 {
#include "attention_rows.inc"
}
#pragma GCC pop_options
#endif
namespace rows_base {
#include "attention_rows.inc"
}

namespace {

using FwdRow = float (*)(float*, int, int, int, const float*, float, float);
using BwdRow = void (*)(float*, float*, int, int, int, const float*, float, float, float, float);

struct RowOps {
  FwdRow fwd;
  BwdRow bwd;
};

/** The row passes for the instruction set of the selected matmul micro-kernel (gemm_select). */
RowOps row_ops() {
#if defined(__x86_64__) && defined(__GNUC__)
  const char* isa = gemm_selected();
  if (std::strcmp(isa, "avx512") == 0) return {rows_avx512::fwd_row, rows_avx512::bwd_row};
  if (std::strcmp(isa, "avx2") == 0) return {rows_avx2::fwd_row, rows_avx2::bwd_row};
#endif
  return {rows_base::fwd_row, rows_base::bwd_row};
}

constexpr int64_t QB = 64;  // queries per block

thread_local Buffer tileS, tileP, keepBuf;

/** The keys [jlo, jhi) that queries [i0, i1) may see (causality and window; padding apart). */
void key_range(const AttentionArgs& a, int64_t i0, int64_t i1, int64_t* jlo, int64_t* jhi) {
  const int64_t p0 = i0 + a.S - a.T, pLast = i1 - 1 + a.S - a.T;
  *jhi = a.causal ? std::min(a.S, pLast + 1) : a.S;
  *jlo = a.window > 0 ? std::max<int64_t>(0, p0 - a.window + 1) : 0;
}

/** Row r's allowed keys, relative to jlo. */
void row_range(const AttentionArgs& a, int64_t i, int64_t jlo, int64_t jhi, int* lo, int* hi) {
  const int64_t p = i + a.S - a.T;
  const int64_t l = a.window > 0 ? std::max(jlo, p - a.window + 1) : jlo;
  const int64_t h = a.causal ? std::min(jhi, p + 1) : jhi;
  *lo = static_cast<int>(l - jlo);
  *hi = static_cast<int>(std::max(l, h) - jlo);
}

/** keep[j] = 1 for key jlo + j not padded (and j < nk), else 0, for j < ldt. */
float* keep_vector(const AttentionArgs& a, int64_t b, int64_t jlo, int64_t nk, int64_t ldt) {
  float* keep = keepBuf.get(ldt);
  for (int64_t j = 0; j < ldt; j++) keep[j] = j < nk && (a.mask == nullptr || a.mask[b * a.S + jlo + j] != 0) ? 1.0f : 0.0f;
  return keep;
}

GemmArgs product(const float* A, int64_t lda, bool transA, const float* B, int64_t ldb, bool transB, float* C, int64_t ldc,
                 int64_t M, int64_t N, int64_t K, bool accumulate) {
  GemmArgs g;
  g.a = A, g.b = B, g.c = C, g.M = M, g.N = N, g.K = K, g.lda = lda, g.ldb = ldb, g.ldc = ldc;
  g.transA = transA, g.transB = transB, g.accumulate = accumulate, g.batch = 1, g.strideA = g.strideB = g.strideC = 0;
  return g;
}

struct Job {
  const AttentionArgs* a;
  RowOps ops;
  int64_t units, blocks;
  std::atomic<int64_t> next{0};
};

/** Forward of one (b, h, query block). */
void forward_unit(const AttentionArgs& a, const RowOps& ops, int64_t b, int64_t h, int64_t i0, int64_t i1) {
  const int64_t g = h / (a.H / a.Hkv), ldq = a.H * a.Dh, ldk = a.Hkv * a.Dh, rows = i1 - i0;
  const float* q = a.q + ((b * a.T + i0) * a.H + h) * a.Dh;
  float* out = a.out + ((b * a.T + i0) * a.H + h) * a.Dh;
  float* lse = a.lse + (b * a.H + h) * a.T + i0;
  int64_t jlo, jhi;
  key_range(a, i0, i1, &jlo, &jhi);
  const int64_t nk = jhi - jlo;
  if (nk <= 0) {
    for (int64_t r = 0; r < rows; r++) {
      std::memset(out + r * ldq, 0, a.Dh * sizeof(float));
      lse[r] = -__builtin_inff();
    }
    return;
  }
  const int64_t ldt = (nk + 15) / 16 * 16;
  const float* k = a.k + ((b * a.S + jlo) * a.Hkv + g) * a.Dh;
  const float* v = a.v + ((b * a.S + jlo) * a.Hkv + g) * a.Dh;
  float* s = tileS.get(rows * ldt);
  const float* keep = keep_vector(a, b, jlo, nk, ldt);
  gemm_serial(product(q, ldq, false, k, ldk, true, s, ldt, rows, nk, a.Dh, false));  // S = Q K^T
  for (int64_t r = 0; r < rows; r++) {
    int lo, hi;
    row_range(a, i0 + r, jlo, jhi, &lo, &hi);
    lse[r] = ops.fwd(s + r * ldt, static_cast<int>(ldt / 16), lo, hi, keep, a.scale, a.softcap);
  }
  gemm_serial(product(s, ldt, false, v, ldk, false, out, ldq, rows, a.Dh, nk, false));  // O = P V
}

void run_forward(void* ctx, int) {
  Job& job = *static_cast<Job*>(ctx);
  const AttentionArgs& a = *job.a;
  for (int64_t u; (u = job.next.fetch_add(1)) < job.units;) {
    const int64_t bh = u / job.blocks, i0 = u % job.blocks * QB;
    forward_unit(a, job.ops, bh / a.H, bh % a.H, i0, std::min(a.T, i0 + QB));
  }
}

/** Backward of one (b, kv head g): all its query heads and query blocks. */
void backward_unit(const AttentionArgs& a, const RowOps& ops, int64_t b, int64_t g) {
  const int64_t ldq = a.H * a.Dh, ldk = a.Hkv * a.Dh, group = a.H / a.Hkv;
  float* dk = a.dk + (b * a.S * a.Hkv + g) * a.Dh;
  float* dv = a.dv + (b * a.S * a.Hkv + g) * a.Dh;
  for (int64_t j = 0; j < a.S; j++) {
    std::memset(dk + j * ldk, 0, a.Dh * sizeof(float));
    std::memset(dv + j * ldk, 0, a.Dh * sizeof(float));
  }
  for (int64_t h = g * group; h < (g + 1) * group; h++) {
    for (int64_t i0 = 0; i0 < a.T; i0 += QB) {
      const int64_t i1 = std::min(a.T, i0 + QB), rows = i1 - i0, at = ((b * a.T + i0) * a.H + h) * a.Dh;
      const float *q = a.q + at, *out = a.out + at, *dout = a.dout + at;
      const float* lse = a.lse + (b * a.H + h) * a.T + i0;
      float* dq = a.dq + at;
      int64_t jlo, jhi;
      key_range(a, i0, i1, &jlo, &jhi);
      const int64_t nk = jhi - jlo;
      if (nk <= 0) {
        for (int64_t r = 0; r < rows; r++) std::memset(dq + r * ldq, 0, a.Dh * sizeof(float));
        continue;
      }
      const int64_t ldt = (nk + 15) / 16 * 16;
      const float* k = a.k + ((b * a.S + jlo) * a.Hkv + g) * a.Dh;
      const float* v = a.v + ((b * a.S + jlo) * a.Hkv + g) * a.Dh;
      float* s = tileS.get(rows * ldt);
      float* dp = tileP.get(rows * ldt);
      const float* keep = keep_vector(a, b, jlo, nk, ldt);
      gemm_serial(product(q, ldq, false, k, ldk, true, s, ldt, rows, nk, a.Dh, false));      // S = Q K^T
      gemm_serial(product(dout, ldq, false, v, ldk, true, dp, ldt, rows, nk, a.Dh, false));  // dP = dO V^T
      for (int64_t r = 0; r < rows; r++) {
        float D = 0;  // dout . out of this row
        for (int64_t d = 0; d < a.Dh; d++) D += dout[r * ldq + d] * out[r * ldq + d];
        int lo, hi;
        row_range(a, i0 + r, jlo, jhi, &lo, &hi);
        ops.bwd(s + r * ldt, dp + r * ldt, static_cast<int>(ldt / 16), lo, hi, keep, a.scale, a.softcap, lse[r], D);
      }
      float* dkb = dk + jlo * ldk;
      float* dvb = dv + jlo * ldk;
      gemm_serial(product(s, ldt, true, dout, ldq, false, dvb, ldk, nk, a.Dh, rows, true));  // dV += P^T dO
      gemm_serial(product(dp, ldt, false, k, ldk, false, dq, ldq, rows, a.Dh, nk, false));   // dQ = dS K
      gemm_serial(product(dp, ldt, true, q, ldq, false, dkb, ldk, nk, a.Dh, rows, true));    // dK += dS^T Q
    }
  }
}

void run_backward(void* ctx, int) {
  Job& job = *static_cast<Job*>(ctx);
  const AttentionArgs& a = *job.a;
  for (int64_t u; (u = job.next.fetch_add(1)) < job.units;) backward_unit(a, job.ops, u / a.Hkv, u % a.Hkv);
}

/** Multiply-adds below which one thread does the whole job. */
constexpr int64_t MIN_PARALLEL_MACS = int64_t(1) << 18;

int threads_for(const AttentionArgs& a, int threads, int64_t units) {
  const int64_t macs = a.B * a.H * a.T * a.S * a.Dh;
  return macs < MIN_PARALLEL_MACS ? 1 : static_cast<int>(std::min<int64_t>(threads, units));
}

}  // namespace

void attention_forward(const AttentionArgs& a, int threads) {
  Job job;
  job.a = &a;
  job.ops = row_ops();
  job.blocks = (a.T + QB - 1) / QB;
  job.units = a.B * a.H * job.blocks;
  pool_run(threads_for(a, threads, job.units), run_forward, &job);
}

void attention_exp(const float* x, float* y, int64_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
  const char* isa = gemm_selected();
  if (std::strcmp(isa, "avx512") == 0) return rows_avx512::exp_rows(x, y, n);
  if (std::strcmp(isa, "avx2") == 0) return rows_avx2::exp_rows(x, y, n);
#endif
  rows_base::exp_rows(x, y, n);
}

void attention_backward(const AttentionArgs& a, int threads) {
  Job job;
  job.a = &a;
  job.ops = row_ops();
  job.blocks = 1;
  job.units = a.B * a.Hkv;
  pool_run(threads_for(a, threads, job.units), run_backward, &job);
}

}  // namespace tsdpo
