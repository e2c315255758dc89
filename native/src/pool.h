// A small persistent thread pool for the native kernels: `run(threads, fn, ctx)` calls fn(ctx, tid)
// for tid in [0, threads) — tid 0 on the calling thread — and returns when all are done. Workers
// spin briefly after a job (the kernels of a training step follow each other closely), then sleep
// on a condition variable so that an idle pool costs nothing.
#pragma once

namespace tsdpo {

using TaskFn = void (*)(void* ctx, int tid);

/** Runs fn(ctx, tid) for tid in [0, threads); the pool grows to `threads - 1` workers on demand. */
void pool_run(int threads, TaskFn fn, void* ctx);

}  // namespace tsdpo
