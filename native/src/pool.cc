// The thread pool behind pool_run (pool.h). One job at a time (a mutex serialises callers): the
// caller publishes the job, bumps `gen`, wakes sleepers, runs slice 0 and waits for `done`.
#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax() { asm volatile("yield"); }
#else
static inline void cpu_relax() {}
#endif

namespace tsdpo {
namespace {

// How long a worker spins for the next job before it sleeps. Short: on a 2-core machine a spinning
// worker takes a core away from the WebAssembly kernels that run between two matmuls.
constexpr auto SPIN = std::chrono::microseconds(40);

struct Pool {
  std::mutex call;                 // one job at a time
  std::vector<std::thread> workers;
  std::atomic<unsigned> gen{0};    // bumped once per job
  std::atomic<int> done{0};        // workers finished with the current job
  std::atomic<int> sleepers{0};    // workers blocked on `wake`
  std::mutex sleep;
  std::condition_variable wake;
  // The current job (written before `gen` is bumped).
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int threads = 1;

  void worker(int tid, unsigned seen) {
    for (;;) {
      auto until = std::chrono::steady_clock::now() + SPIN;
      for (int i = 0; gen.load(std::memory_order_acquire) == seen; i++) {
        cpu_relax();
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lock(sleep);
          sleepers.fetch_add(1);
          while (gen.load() == seen) wake.wait(lock);
          sleepers.fetch_sub(1);
          break;
        }
      }
      seen = gen.load(std::memory_order_acquire);
      // Workers beyond the job's thread count skip it but still report.
      if (tid < threads) fn(ctx, tid);
      done.fetch_add(1, std::memory_order_acq_rel);
    }
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: workers are detached and live as long as the process
  return *p;
}

}  // namespace

void pool_run(int threads, TaskFn fn, void* ctx) {
  if (threads <= 1) {
    fn(ctx, 0);
    return;
  }
  Pool& p = pool();
  std::lock_guard<std::mutex> guard(p.call);
  while (static_cast<int>(p.workers.size()) < threads - 1) {
    int tid = static_cast<int>(p.workers.size()) + 1;
    unsigned seen = p.gen.load();
    p.workers.emplace_back([&p, tid, seen] { p.worker(tid, seen); });
    p.workers.back().detach();
  }
  p.fn = fn;
  p.ctx = ctx;
  p.threads = threads;
  p.done.store(0, std::memory_order_relaxed);
  p.gen.fetch_add(1);  // seq_cst: pairs with the sleepers' check (no lost wake-up)
  if (p.sleepers.load() > 0) {
    { std::lock_guard<std::mutex> lock(p.sleep); }
    p.wake.notify_all();
  }
  fn(ctx, 0);
  const int others = static_cast<int>(p.workers.size());
  for (int i = 0; p.done.load(std::memory_order_acquire) < others; i++) {
    if (i < 100000) cpu_relax();
    else std::this_thread::yield();
  }
}

}  // namespace tsdpo
