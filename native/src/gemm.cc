// The blocked matrix multiply behind gemm() (gemm.h). One thread (gemm_single) runs the BLIS
// loop order:
//
//   for each column block jc (NC columns of C)
//     for each K block (k_blocks: KC or fewer)
//       pack op(B)[kblock, jc block] into NR-column panels (k-major, zero-padded)   -> L3
//       for each row block ic (MC rows)
//         pack op(A)[ic block, kblock] into MR-row panels (k-major, zero-padded)    -> L2
//         for each NR panel of B (stays in L1), for each MR panel of A: micro-kernel
//
// Several threads (run_job): all of them first pack op(B) for the whole of K (claiming panels) into one shared
// buffer, wait until it is complete, then claim work units (a row block x a chunk of B panels,
// over all K blocks) from an atomic counter until none is left. The one wait is short (packing),
// and claiming, rather than a fixed split, keeps both cores busy when one of them is preempted
// (shared machines) or busy elsewhere. Batches of many elements are claimed element by element
// instead, each element computed by one thread with its own buffers. Which thread computes a C
// element never changes how it is summed (gemm.h), so results do not depend on the claiming.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "buffer.h"
#include "gemm.h"
#include "pack.h"
#include "pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#else
static inline void cpu_relax() {}
#endif

namespace tsdpo {
namespace {

constexpr int64_t KC = 256;   // K block: a 32-column B panel of 256 k (32 KiB) stays in L1
constexpr int64_t NC = 4096;  // columns of B packed at once (4 MiB at KC = 256)
// Products below this many multiply-adds run on the calling thread (waking a sleeping worker
// costs tens of microseconds).
constexpr int64_t MIN_PARALLEL_MADDS = int64_t(1) << 19;
// Work units per thread that the chunking aims for (load balance vs. claiming cost).
constexpr int64_t UNITS_PER_THREAD = 8;
// Threads share op(B) packed for all of K at once, up to this many floats (64 MiB; longer K x N
// is done in column super-blocks, with a wait between them).
constexpr int64_t SHARED_B_FLOATS = int64_t(16) << 20;
// A thread keeps its packed rows of A (all of K) for its next unit of the same rows up to this K.
constexpr int64_t KEEP_A_MAX_K = 4096;

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

thread_local Buffer packA, packB;  // each thread's own
Buffer sharedB;                     // the B block all threads of a job share
std::mutex sharedBLock;             // held by the job that uses sharedB

/** Runs the micro-kernel over rows [0, mc) of a packed A block and panels [j0, j1) of a packed B block. */
inline void compute(const MicroKernel& mk, int64_t kb, const float* ap, int64_t mc, const float* bp, int64_t nc,
                    int64_t j0, int64_t j1, float* c, int64_t ldc, bool add) {
  for (int64_t jr = j0 * mk.nr; jr < std::min(nc, j1 * mk.nr); jr += mk.nr) {
    for (int64_t ir = 0; ir < mc; ir += mk.mr) {
      mk.run(kb, ap + ir * kb, bp + jr * kb, c + ir * ldc + jr, ldc,
             static_cast<int>(std::min<int64_t>(mk.mr, mc - ir)), static_cast<int>(std::min<int64_t>(mk.nr, nc - jr)), add);
    }
  }
}

void pack_a_block(const GemmArgs& p, const MicroKernel& mk, const float* a, int64_t ic, int64_t mc,
                  int64_t k0, int64_t kb, float* ap) {
  for (int64_t ir = 0; ir < mc; ir += mk.mr) {
    pack_a(mk.mr, kb, std::min<int64_t>(mk.mr, mc - ir), a, p.lda, p.transA, ic + ir, k0, ap + ir * kb);
  }
}

/** C = 0 (or unchanged when accumulating) for K = 0. */
void zero_c(const GemmArgs& p, float* c) {
  if (p.accumulate) return;
  for (int64_t i = 0; i < p.M; i++) std::memset(c + i * p.ldc, 0, p.N * sizeof(float));
}

/** One whole batch element on the calling thread, with its own buffers. */
void gemm_single(const GemmArgs& p, const MicroKernel& mk, const float* a, const void* b, float* c) {
  if (p.K == 0) return zero_c(p, c);
  const int64_t nb = k_blocks(p.K), kmax = k_start(p.K, nb, 1);
  const int64_t ncMax = std::min(NC, (p.N + mk.nr - 1) / mk.nr * mk.nr);
  float* bp = packB.get(kmax * ncMax);
  float* ap = packA.get(kmax * mk.mc);
  for (int64_t jc = 0; jc < p.N; jc += NC) {
    const int64_t nc = std::min(NC, p.N - jc);
    for (int64_t kbi = 0; kbi < nb; kbi++) {
      const int64_t k0 = k_start(p.K, nb, kbi), kb = k_start(p.K, nb, kbi + 1) - k0;
      for (int64_t jr = 0; jr < nc; jr += mk.nr) {
        pack_b(mk.nr, kb, std::min<int64_t>(mk.nr, nc - jr), b, p.bBf16, p.ldb, p.transB, k0, jc + jr, bp + jr * kb);
      }
      for (int64_t ic = 0; ic < p.M; ic += mk.mc) {
        const int64_t mc = std::min<int64_t>(mk.mc, p.M - ic);
        pack_a_block(p, mk, a, ic, mc, k0, kb, ap);
        compute(mk, kb, ap, mc, bp, nc, 0, (nc + mk.nr - 1) / mk.nr, c + ic * p.ldc + jc, p.ldc, p.accumulate || kbi > 0);
      }
    }
  }
}

struct Job {
  GemmArgs p;
  const MicroKernel* mk;
  int threads;
  bool byBatch;  // threads claim whole batch elements; else they share each element's packed B
  float* bp;     // the shared packed B: all of K for `ncs` columns
  int64_t ncs;   // columns of B packed at once (all of N unless K x N is too big)
  // Claim and completion counters; they only grow, step after step (see claim()).
  std::atomic<int64_t> packNext{0}, packDone{0}, unitNext{0}, unitDone{0}, batchNext{0};
};

/** Takes the next index below `end` from `counter`, or returns -1 when none is left. */
int64_t claim(std::atomic<int64_t>& counter, int64_t end) {
  int64_t v = counter.load(std::memory_order_relaxed);
  while (v < end) {
    if (counter.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return v;
  }
  return -1;
}

/** Waits until `counter` reaches `target` (the other threads finish what they claimed). */
void wait_for(const std::atomic<int64_t>& counter, int64_t target) {
  for (int i = 0; counter.load(std::memory_order_acquire) < target; i++) {
    if (i < 2000) cpu_relax();
    else std::this_thread::yield();
  }
}

void run_job(void* ctx, int /*tid*/) {
  Job& job = *static_cast<Job*>(ctx);
  const GemmArgs& p = job.p;
  const MicroKernel& mk = *job.mk;
  if (job.byBatch) {
    for (int64_t i; (i = claim(job.batchNext, p.batch)) >= 0;) {
      gemm_single(p, mk, p.a + i * p.strideA, b_element(p, i * p.strideB), p.c + i * p.strideC);
    }
    return;
  }
  const int64_t nb = k_blocks(p.K), K = p.K;
  const int64_t icBlocks = (p.M + mk.mc - 1) / mk.mc, ncs = job.ncs, ncsPad = (ncs + mk.nr - 1) / mk.nr * mk.nr;
  // This thread's packed A block, for all K blocks of one row block (rows ic of element bi,
  // super-block jc), kept for the next unit of the same row block when K is not too long.
  const bool keepA = K <= KEEP_A_MAX_K;
  float* ap = packA.get((keepA ? K : k_start(K, nb, 1)) * mk.mc);
  int64_t heldBi = -1, heldJc = -1, heldIc = -1;
  int64_t packEnd = 0, unitEnd = 0;
  for (int64_t bi = 0; bi < p.batch; bi++) {
    const float* a = p.a + bi * p.strideA;
    const void* b = b_element(p, bi * p.strideB);
    float* c = p.c + bi * p.strideC;
    for (int64_t jc = 0; jc < p.N; jc += ncs) {
      const int64_t nc = std::min(ncs, p.N - jc), panels = (nc + mk.nr - 1) / mk.nr;
      // All K blocks of op(B)[:, jc .. jc + nc), K block kbi at job.bp + k0 * ncsPad.
      packEnd += nb * panels;
      for (int64_t v; (v = claim(job.packNext, packEnd)) >= 0;) {
        const int64_t w = v - (packEnd - nb * panels), kbi = w / panels, jr = w % panels * mk.nr;
        const int64_t k0 = k_start(K, nb, kbi), kb = k_start(K, nb, kbi + 1) - k0;
        pack_b(mk.nr, kb, std::min<int64_t>(mk.nr, nc - jr), b, p.bBf16, p.ldb, p.transB, k0, jc + jr, job.bp + k0 * ncsPad + jr * kb);
        job.packDone.fetch_add(1, std::memory_order_acq_rel);
      }
      wait_for(job.packDone, packEnd);
      // Units: a row block x a chunk of B panels over all of K; enough of them to balance the threads.
      const int64_t chunks = std::min(panels, (UNITS_PER_THREAD * job.threads + icBlocks - 1) / icBlocks);
      const int64_t chunkPanels = (panels + chunks - 1) / chunks, perIc = (panels + chunkPanels - 1) / chunkPanels;
      const int64_t units = icBlocks * perIc;
      unitEnd += units;
      for (int64_t v; (v = claim(job.unitNext, unitEnd)) >= 0;) {
        const int64_t u = v - (unitEnd - units), ic = u / perIc * mk.mc, mc = std::min<int64_t>(mk.mc, p.M - ic);
        const int64_t j0 = u % perIc * chunkPanels;
        const bool held = keepA && heldBi == bi && heldJc == jc && heldIc == ic;
        for (int64_t kbi = 0; kbi < nb; kbi++) {
          const int64_t k0 = k_start(K, nb, kbi), kb = k_start(K, nb, kbi + 1) - k0;
          float* apk = keepA ? ap + k0 * mk.mc : ap;
          if (!held) pack_a_block(p, mk, a, ic, mc, k0, kb, apk);
          compute(mk, kb, apk, mc, job.bp + k0 * ncsPad, nc, j0, j0 + chunkPanels, c + ic * p.ldc + jc, p.ldc, p.accumulate || kbi > 0);
        }
        heldBi = bi, heldJc = jc, heldIc = ic;
        job.unitDone.fetch_add(1, std::memory_order_acq_rel);
      }
      // The next super-block or batch element repacks job.bp: wait until nobody reads it.
      if (jc + ncs < p.N || bi + 1 < p.batch) wait_for(job.unitDone, unitEnd);
    }
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

void gemm_serial(const GemmArgs& p) {
  if (p.M <= 0 || p.N <= 0) return;
  const MicroKernel& mk = *current();
  for (int64_t i = 0; i < p.batch; i++) gemm_single(p, mk, p.a + i * p.strideA, b_element(p, i * p.strideB), p.c + i * p.strideC);
}

void gemm(const GemmArgs& args, int threads) {
  if (args.M <= 0 || args.N <= 0 || args.batch <= 0) return;
  GemmArgs p = args;
  // A batch that shares B, with A and C dense across the batch, is one taller product.
  if (p.batch > 1 && p.strideB == 0 && !p.transA && p.strideA == p.M * p.lda && p.strideC == p.M * p.ldc) {
    p.M *= p.batch;
    p.batch = 1;
  }
  const MicroKernel& mk = *current();
  const int64_t madds = p.M * p.N * std::max<int64_t>(p.K, 1) * p.batch;
  if (threads <= 1 || madds < MIN_PARALLEL_MADDS || p.K == 0) {
    for (int64_t i = 0; i < p.batch; i++) gemm_single(p, mk, p.a + i * p.strideA, b_element(p, i * p.strideB), p.c + i * p.strideC);
    return;
  }
  Job job;
  job.p = p;
  job.mk = &mk;
  job.threads = threads;
  job.byBatch = p.batch >= 2 * threads;
  if (job.byBatch) return pool_run(threads, run_job, &job);
  std::lock_guard<std::mutex> guard(sharedBLock);
  const int64_t nPad = (p.N + mk.nr - 1) / mk.nr * mk.nr;
  job.ncs = std::min(nPad, std::max<int64_t>(mk.nr, SHARED_B_FLOATS / p.K / mk.nr * mk.nr));
  job.bp = sharedB.get(p.K * job.ncs);
  pool_run(threads, run_job, &job);
}

}  // namespace tsdpo
