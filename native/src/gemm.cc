// The blocked matrix multiply behind gemm() (gemm.h), in the BLIS loop order:
//
//   for each column block jc (NC columns of C)
//     for each K block (k_blocks: KC or fewer)
//       pack op(B)[kblock, jc block] into NR-column panels (k-major, zero-padded)   -> L3
//       for each row block ic (MC rows)
//         pack op(A)[ic block, kblock] into MR-row panels (k-major, zero-padded)    -> L2
//         for each NR panel of B (stays in L1), for each MR panel of A: micro-kernel
//
// Threads take disjoint rectangles of C (or whole batch elements), each with its own packing
// buffers, so no two threads write the same C and the summation order never depends on them.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "gemm.h"
#include "pack.h"
#include "pool.h"

namespace tsdpo {
namespace {

constexpr int64_t KC = 256;   // K block: a 32-column B panel of 256 k (32 KiB) stays in L1
constexpr int64_t NC = 4096;  // columns of B packed at once
// Products below this many multiply-adds run on the calling thread (waking a sleeping worker
// costs tens of microseconds).
constexpr int64_t MIN_PARALLEL_MADDS = int64_t(1) << 19;

const MicroKernel* selected = nullptr;

const MicroKernel* best() {
  if (const MicroKernel* k = kernel_avx512()) return k;
  if (const MicroKernel* k = kernel_avx2()) return k;
  return kernel_scalar();
}

const MicroKernel* current() {
  if (selected == nullptr) selected = best();
  return selected;
}

/** Number of K blocks: every block has KC or fewer k, and their sizes differ by at most 1. */
int64_t k_blocks(int64_t K) { return (K + KC - 1) / KC; }
/** Start of K block `i` of `nb` (sizes: the first K % nb blocks get one more). */
int64_t k_start(int64_t K, int64_t nb, int64_t i) {
  const int64_t base = K / nb, extra = K % nb;
  return i * base + std::min(i, extra);
}

/** A 64-byte aligned float buffer per thread, grown on demand and kept for the next call. */
struct Buffer {
  float* data = nullptr;
  size_t size = 0;
  float* get(size_t n) {
    if (n > size) {
      std::free(data);
      size = n;
      data = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
    }
    return data;
  }
};
thread_local Buffer packA, packB;

/** Computes rows [m0, m1) x columns [n0, n1) of one batch element's C. */
void gemm_rect(const GemmArgs& p, const MicroKernel& mk, const float* a, const float* b, float* c,
               int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (m0 >= m1 || n0 >= n1) return;
  const int mr = mk.mr, nr = mk.nr;
  const int64_t K = p.K;
  if (K == 0) {
    if (!p.accumulate) {
      for (int64_t i = m0; i < m1; i++) std::memset(c + i * p.ldc + n0, 0, (n1 - n0) * sizeof(float));
    }
    return;
  }
  const int64_t nb = k_blocks(K);
  const int64_t kmax = k_start(K, nb, 1) - k_start(K, nb, 0);
  const int64_t ncMax = std::min(NC, (n1 - n0 + nr - 1) / nr * nr);
  float* bp = packB.get(kmax * ncMax);
  float* ap = packA.get(kmax * mk.mc);
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = std::min(NC, n1 - jc);
    for (int64_t kbi = 0; kbi < nb; kbi++) {
      const int64_t k0 = k_start(K, nb, kbi), kb = k_start(K, nb, kbi + 1) - k0;
      const bool add = p.accumulate || kbi > 0;
      for (int64_t jr = 0; jr < nc; jr += nr) {
        pack_b(nr, kb, std::min<int64_t>(nr, nc - jr), b, p.ldb, p.transB, k0, jc + jr, bp + jr * kb);
      }
      for (int64_t ic = m0; ic < m1; ic += mk.mc) {
        const int64_t mc = std::min<int64_t>(mk.mc, m1 - ic);
        for (int64_t ir = 0; ir < mc; ir += mr) {
          pack_a(mr, kb, std::min<int64_t>(mr, mc - ir), a, p.lda, p.transA, ic + ir, k0, ap + ir * kb);
        }
        for (int64_t jr = 0; jr < nc; jr += nr) {
          for (int64_t ir = 0; ir < mc; ir += mr) {
            mk.run(kb, ap + ir * kb, bp + jr * kb, c + (ic + ir) * p.ldc + jc + jr, p.ldc,
                   static_cast<int>(std::min<int64_t>(mr, mc - ir)), static_cast<int>(std::min<int64_t>(nr, nc - jr)), add);
          }
        }
      }
    }
  }
}

/** Contiguous slice `i` of `parts` over [0, n) units (sizes differ by at most 1). */
void slice(int64_t n, int64_t parts, int64_t i, int64_t* lo, int64_t* hi) {
  const int64_t base = n / parts, extra = n % parts;
  *lo = i * base + std::min(i, extra);
  *hi = *lo + base + (i < extra ? 1 : 0);
}

struct Job {
  GemmArgs p;
  const MicroKernel* mk;
  int threads;
  bool byBatch;  // threads take whole batch elements; else a tm x tn grid of rectangles of each
  int tm, tn;
};

void run_job(void* ctx, int tid) {
  const Job& job = *static_cast<const Job*>(ctx);
  const GemmArgs& p = job.p;
  const MicroKernel& mk = *job.mk;
  int64_t b0 = 0, b1 = p.batch, m0 = 0, m1 = p.M, n0 = 0, n1 = p.N;
  if (job.byBatch) {
    slice(p.batch, job.threads, tid, &b0, &b1);
  } else {
    const int64_t mp = (p.M + mk.mr - 1) / mk.mr, np = (p.N + mk.nr - 1) / mk.nr;
    slice(mp, job.tm, tid / job.tn, &m0, &m1);
    slice(np, job.tn, tid % job.tn, &n0, &n1);
    m0 *= mk.mr, m1 = std::min(p.M, m1 * mk.mr), n0 *= mk.nr, n1 = std::min(p.N, n1 * mk.nr);
  }
  for (int64_t i = b0; i < b1; i++) {
    gemm_rect(p, mk, p.a + i * p.strideA, p.b + i * p.strideB, p.c + i * p.strideC, m0, m1, n0, n1);
  }
}

}  // namespace

bool gemm_select(const char* name) {
  const MicroKernel* k = nullptr;
  if (std::strcmp(name, "auto") == 0) k = best();
  else if (std::strcmp(name, "avx512") == 0) k = kernel_avx512();
  else if (std::strcmp(name, "avx2") == 0) k = kernel_avx2();
  else if (std::strcmp(name, "scalar") == 0) k = kernel_scalar();
  if (k == nullptr) return false;
  selected = k;
  return true;
}

const char* gemm_selected() { return current()->name; }

const char* gemm_available() {
  if (kernel_avx512()) return "avx512,avx2,scalar";
  if (kernel_avx2()) return "avx2,scalar";
  return "scalar";
}

void gemm(const GemmArgs& args, int threads) {
  if (args.M <= 0 || args.N <= 0 || args.batch <= 0) return;
  Job job{args, current(), 1, false, 1, 1};
  GemmArgs& p = job.p;
  // A batch that shares B, with A and C dense across the batch, is one taller product.
  if (p.batch > 1 && p.strideB == 0 && !p.transA && p.strideA == p.M * p.lda && p.strideC == p.M * p.ldc) {
    p.M *= p.batch;
    p.batch = 1;
  }
  const MicroKernel& mk = *job.mk;
  const int64_t madds = p.M * p.N * std::max<int64_t>(p.K, 1) * p.batch;
  const int64_t mp = (p.M + mk.mr - 1) / mk.mr, np = (p.N + mk.nr - 1) / mk.nr;
  if (threads > 1 && madds >= MIN_PARALLEL_MADDS) {
    if (p.batch >= threads && (p.batch % threads == 0 || p.batch >= 4 * threads)) {
      job.threads = threads;
      job.byBatch = true;
    } else {
      // The tm x tn grid with the least padded work per thread; ties split N (each thread then
      // packs only its share of B).
      int64_t bestCost = -1;
      for (int tn = threads; tn >= 1; tn--) {
        if (threads % tn != 0) continue;
        const int tm = threads / tn;
        const int64_t cost = (mp + tm - 1) / tm * mk.mr * ((np + tn - 1) / tn) * mk.nr;
        if (bestCost < 0 || cost < bestCost) bestCost = cost, job.tm = tm, job.tn = tn;
      }
      job.threads = threads;
    }
  }
  pool_run(job.threads, run_job, &job);
}

}  // namespace tsdpo
