// The streaming kernels of stream.h: per-instruction-set loops (stream_ops.inc) and the split of
// the work into blocks that threads claim from an atomic counter. A block is computed by one
// thread with the same operations whoever takes it, so the thread count never changes a bit.
#include "stream.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "pool.h"

namespace tsdpo {

/** AdamW's hyperparameters rounded to float32 as assembly/optim.ts rounds them (from float64). */
struct AdamwConsts {
  float decay, w1, b2, w2, step, sbc2, eps;
};

#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,fma"))), apply_to = function)
namespace ops_avx512 {
#include "stream_ops.inc"
}
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
namespace ops_avx2 {
#include "stream_ops.inc"
}
#pragma clang attribute pop
#elif defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
namespace ops_avx512 {
#include "stream_ops.inc"
}
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace ops_avx2 {
#include "stream_ops.inc"
}
#pragma GCC pop_options
#endif
namespace ops_base {
#include "stream_ops.inc"
}

namespace {

struct Ops {
  void (*adamw)(const AdamwArgs&, const AdamwConsts&, int64_t, int64_t);
  void (*affine)(const float*, float*, float, float, bool, int64_t, int64_t);
  double (*sumsq)(const float*, int64_t);
  void (*sumsq4)(const float*, int64_t, double*);
  void (*widen)(const uint16_t*, float*, int64_t);
  void (*add)(float*, const float*, int64_t);
  void (*sum)(const float*, const float*, float*, int64_t, int64_t);
};

#define OPS(ns) Ops{ns::adamw_range, ns::affine_range, ns::sumsq_chunk, ns::sumsq_chunks4, ns::widen_row, ns::add_row, ns::sum_range}

/** The loops for the instruction set of the selected matmul micro-kernel (gemm_select), as attention.cc. */
Ops ops() {
#if defined(__x86_64__) && defined(__GNUC__)
  const char* isa = gemm_selected();
  if (std::strcmp(isa, "avx512") == 0) return OPS(ops_avx512);
  if (std::strcmp(isa, "avx2") == 0) return OPS(ops_avx2);
#endif
  return OPS(ops_base);
}

// Elements per block of the elementwise kernels (256 KiB an operand): big enough that claiming
// costs nothing, small enough that two threads share the tail of an array evenly. Jobs of one
// block stay on the calling thread (waking a sleeping worker costs tens of microseconds).
constexpr int64_t BLOCK = int64_t(1) << 16;
// Floats moved per block of the embedding kernels (rows of the lookup, columns of the gradient).
constexpr int64_t ROW_BLOCK_FLOATS = int64_t(1) << 14;
// Columns per block of the embedding gradient: whole cache lines, so no two threads write one.
constexpr int64_t GRAD_COLUMNS = 64;

/** Calls body(u) for u in [0, units), blocks claimed by up to `threads` threads. */
template <typename Body>
void parallel_for(int64_t units, int threads, const Body& body) {
  if (threads <= 1 || units <= 1) {
    for (int64_t u = 0; u < units; u++) body(u);
    return;
  }
  struct Job {
    std::atomic<int64_t> next{0};
    int64_t units;
    const Body* body;
  } job;
  job.units = units;
  job.body = &body;
  pool_run(static_cast<int>(std::min<int64_t>(threads, units)),
           [](void* ctx, int) {
             Job* j = static_cast<Job*>(ctx);
             for (int64_t u; (u = j->next.fetch_add(1, std::memory_order_relaxed)) < j->units;) (*j->body)(u);
           },
           &job);
}

}  // namespace

void adamw(const AdamwArgs& a, int threads) {
  const AdamwConsts k = {
      static_cast<float>(1.0 - a.lr * a.weightDecay), static_cast<float>(1.0 - a.beta1),
      static_cast<float>(a.beta2),                    static_cast<float>(1.0 - a.beta2),
      static_cast<float>(a.lr / a.bc1),               static_cast<float>(std::sqrt(a.bc2)),
      static_cast<float>(a.eps)};
  const Ops o = ops();
  parallel_for((a.n + BLOCK - 1) / BLOCK, threads,
               [&](int64_t u) { o.adamw(a, k, u * BLOCK, std::min(a.n, (u + 1) * BLOCK)); });
}

double sumsq(const float* x, int64_t n, int64_t chunk, int threads) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  std::vector<double> parts(chunks);
  const Ops o = ops();
  // A unit is four chunks: whole ones go through sumsq4 together, the last (short) one alone.
  const int64_t full = n / chunk;
  parallel_for((chunks + 3) / 4, threads, [&](int64_t u) {
    if (4 * u + 4 <= full) return o.sumsq4(x + 4 * u * chunk, chunk, &parts[4 * u]);
    for (int64_t c = 4 * u; c < std::min(chunks, 4 * u + 4); c++) parts[c] = o.sumsq(x + c * chunk, std::min(chunk, n - c * chunk));
  });
  double total = 0;  // backend.ts sumSquares: the partials in chunk order
  for (const double p : parts) total += p;
  return total;
}

void affine(const float* x, float* out, float scale, float shift, int64_t n, bool fused, int threads) {
  const Ops o = ops();
  parallel_for((n + BLOCK - 1) / BLOCK, threads,
               [&](int64_t u) { o.affine(x, out, scale, shift, fused, u * BLOCK, std::min(n, (u + 1) * BLOCK)); });
}

void add(const float* a, const float* b, float* out, int64_t n, int threads) {
  const Ops o = ops();
  parallel_for((n + BLOCK - 1) / BLOCK, threads, [&](int64_t u) { o.sum(a, b, out, u * BLOCK, std::min(n, (u + 1) * BLOCK)); });
}

int64_t embedding_check(const int32_t* ids, int64_t N, int64_t V) {
  for (int64_t r = 0; r < N; r++) {
    if (ids[r] < 0 || ids[r] >= V) return r;
  }
  return -1;
}

void embedding(const void* weight, const int32_t* ids, float* out, int64_t N, int64_t D, bool bf16, int threads) {
  if (N == 0 || D == 0) return;
  const int64_t rows = std::max<int64_t>(1, ROW_BLOCK_FLOATS / D);
  const Ops o = ops();
  parallel_for((N + rows - 1) / rows, threads, [&](int64_t u) {
    for (int64_t r = u * rows; r < std::min(N, (u + 1) * rows); r++) {
      const int64_t at = static_cast<int64_t>(ids[r]) * D;
      if (bf16) o.widen(static_cast<const uint16_t*>(weight) + at, out + r * D, D);
      else std::memcpy(out + r * D, static_cast<const float*>(weight) + at, D * sizeof(float));
    }
  });
}

void embedding_grad(const float* dy, const int32_t* ids, float* dweight, int64_t N, int64_t D, int threads) {
  if (N == 0 || D == 0) return;
  const Ops o = ops();
  if (N * D < ROW_BLOCK_FLOATS) threads = 1;
  parallel_for((D + GRAD_COLUMNS - 1) / GRAD_COLUMNS, threads, [&](int64_t u) {
    const int64_t c0 = u * GRAD_COLUMNS, width = std::min(D, c0 + GRAD_COLUMNS) - c0;
    for (int64_t r = 0; r < N; r++) o.add(dweight + static_cast<int64_t>(ids[r]) * D + c0, dy + r * D + c0, width);
  });
}

}  // namespace tsdpo
