// Native float32 matrix multiply with the semantics of the `matmul` kernel (docs/kernels.md):
// for each batch element i, C_i (+)= op(A_i) op(B_i), op = transpose when the flag is set.
//
// Summation order (why results are bit-identical across thread counts and instruction sets):
// K is cut into blocks that depend on K alone (gemm.cc, k_blocks); within a block every C element
// is a chain of fused multiply-adds over k in increasing order starting from 0, and the block's
// sum is then added to C (or stored, for the first block without `accumulate`). Threads split C
// into disjoint rectangles, so the split never changes the order.
//
// B may be stored in bfloat16 (a frozen weight): packing widens it exactly (pack.h) and nothing
// else changes, so the result is bit for bit that of float32 B holding the widened values.
#pragma once

#include <cstdint>

namespace tsdpo {

struct GemmArgs {
  const float* a;
  const void* b;             // float32 elements, or bfloat16 bits (uint16_t) when bBf16
  float* c;
  int64_t M, N, K;
  int64_t lda, ldb, ldc;     // row strides of the stored matrices, in elements
  bool transA, transB;       // A stored [K, M] / B stored [N, K]
  bool accumulate;           // C += ... instead of C = ...
  int64_t batch;
  int64_t strideA, strideB, strideC;  // element strides between batch elements (0 broadcasts)
  bool bBf16 = false;        // B holds bfloat16; ldb and strideB still count elements
};

/** Address of B's element `i` (float32 or bfloat16 elements, GemmArgs::bBf16). */
inline const void* b_element(const GemmArgs& p, int64_t i) {
  return static_cast<const char*>(p.b) + i * (p.bBf16 ? 2 : 4);
}

/**
 * A register-blocked micro-kernel: computes the MR x NR tile
 *   acc[r][j] = sum_{k < kc} ap[k * MR + r] * bp[k * NR + j]   (fused multiply-adds, k ascending)
 * and writes C[r * ldc + j] = (add ? C[r * ldc + j] : 0) + acc[r][j] for r < m, j < n.
 * `ap` and `bp` are packed panels (gemm.cc), zero-padded to MR rows / NR columns.
 */
struct MicroKernel {
  const char* name;
  int mr, nr;
  int mc;  // rows of A packed at once (a multiple of mr; the packed block sits in L2)
  void (*run)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool add);
};

/** The micro-kernels this binary has, best first; `supported` says whether the CPU runs them. */
const MicroKernel* kernel_avx512();
const MicroKernel* kernel_avx2();
const MicroKernel* kernel_scalar();

/** Selects the micro-kernel by name ("avx512", "avx2", "scalar") or the best supported one ("auto"). */
bool gemm_select(const char* name);
/** Name of the micro-kernel in use. */
const char* gemm_selected();
/** Names of the micro-kernels this CPU can run, best first, comma-separated. */
const char* gemm_available();

/** Runs the product on `threads` threads (the calling one included). Arguments must be valid. */
void gemm(const GemmArgs& p, int threads);

/** The same product on the calling thread only (for kernels that run their own threads). */
void gemm_serial(const GemmArgs& p);

}  // namespace tsdpo
