// Memory-bound kernels that stream over their operands: the AdamW step, the float64 sum of
// squares of gradient chunks, affine, and the embedding lookup and its gradient. Each gives the
// bits of its WebAssembly twin (src/backend/cpu/assembly/optim.ts `adamw`, `sumsq`;
// elementwise.ts `affine`; embedding.ts, bf16.ts `embedding`, `embedding_bf16`, `embedding_grad`):
// the same float operations per element in the same order, with a fused multiply-add exactly where
// the wasm uses math.ts's `madd` and only when `fused` (the relaxed-SIMD build), and no other
// contraction (-ffp-contract=off). Threads claim blocks of elements (rows, columns, chunks) that
// they compute alone, so results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace tsdpo {

/** One torch.optim.AdamW step over n floats (p, m, v updated); hyperparameters as the wasm rounds them. */
struct AdamwArgs {
  float *p, *m, *v;
  const float* g;
  int64_t n;
  double lr, beta1, beta2, eps, weightDecay, bc1, bc2;
  bool fused;
};
void adamw(const AdamwArgs& a, int threads);

/**
 * Sum of x[i]^2 in float64: one partial per chunk of `chunk` elements (8 lanes, the lanes summed
 * pairwise, then the tail in order), the partials added in chunk order starting from 0.
 */
double sumsq(const float* x, int64_t n, int64_t chunk, int threads);

/** out[i] = x[i] * scale + shift (fused when `fused`); out may be x. */
void affine(const float* x, float* out, float scale, float shift, int64_t n, bool fused, int threads);
/** out = a + b over n floats (out may be a or b, else disjoint from both): a `binary` add of dense operands. */
void add(const float* a, const float* b, float* out, int64_t n, int threads);

/**
 * out[r] = weight[ids[r]] (weight [V, D] float32, or bfloat16 bits widened exactly when bf16),
 * out [N, D]. ids must all lie in [0, V) (embedding_check).
 */
void embedding(const void* weight, const int32_t* ids, float* out, int64_t N, int64_t D, bool bf16, int threads);

/** dweight[ids[r]] += dy[r] for r = 0 .. N-1 in order (per element), dy [N, D], dweight [V, D]. */
void embedding_grad(const float* dy, const int32_t* ids, float* dweight, int64_t N, int64_t D, int threads);

/** The first r with ids[r] outside [0, V), or -1. */
int64_t embedding_check(const int32_t* ids, int64_t N, int64_t V);

}  // namespace tsdpo
