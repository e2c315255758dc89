// The thread pool behind pool_run (pool.h). One job at a time (a mutex serialises callers). The
// caller publishes the job in `slot` (generation, closed bit, number of workers inside), bumps
// `gen`, wakes sleepers and runs fn itself; when fn returns the work is done, so it closes the
// slot and waits only for the workers that joined. A worker joins by incrementing the count while
// the slot still shows its generation open, so a late worker never touches a finished job.
#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
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
constexpr auto SPIN = std::chrono::microseconds(50);
constexpr uint64_t CLOSED = uint64_t(1) << 31, COUNT = CLOSED - 1;

struct Pool {
  std::mutex call;                 // one job at a time
  std::vector<std::thread> workers;
  std::atomic<uint32_t> gen{0};    // bumped once per job
  std::atomic<uint64_t> slot{0};   // (generation << 32) | CLOSED | workers inside the job
  std::atomic<int> limit{0};       // workers allowed into the current job
  std::atomic<int> sleepers{0};    // workers blocked on `wake`
  std::mutex sleep;
  std::condition_variable wake;
  TaskFn fn = nullptr;             // the current job (written before `slot` and `gen`)
  void* ctx = nullptr;

  void worker(int tid, uint32_t seen) {
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + SPIN;
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
      uint64_t s = slot.load(std::memory_order_acquire);
      while ((s >> 32) == seen && !(s & CLOSED) && static_cast<int>(s & COUNT) < limit.load(std::memory_order_relaxed)) {
        if (slot.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
          fn(ctx, tid);
          slot.fetch_sub(1, std::memory_order_acq_rel);
          break;
        }
      }
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
    const int tid = static_cast<int>(p.workers.size()) + 1;
    const uint32_t seen = p.gen.load();
    p.workers.emplace_back([&p, tid, seen] { p.worker(tid, seen); });
    p.workers.back().detach();
  }
  p.fn = fn;
  p.ctx = ctx;
  p.limit.store(threads - 1, std::memory_order_relaxed);
  const uint32_t g = p.gen.load() + 1;
  p.slot.store(uint64_t(g) << 32, std::memory_order_release);
  p.gen.store(g);  // seq_cst: pairs with the sleepers' check (no lost wake-up)
  if (p.sleepers.load() > 0) {
    { std::lock_guard<std::mutex> lock(p.sleep); }
    p.wake.notify_all();
  }
  fn(ctx, 0);
  p.slot.fetch_or(CLOSED, std::memory_order_acq_rel);
  for (int i = 0; (p.slot.load(std::memory_order_acquire) & COUNT) != 0; i++) {
    if (i < 4000) cpu_relax();
    else std::this_thread::yield();
  }
}

}  // namespace tsdpo
