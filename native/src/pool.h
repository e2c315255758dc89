// A small persistent thread pool for the native kernels. pool_run(threads, fn, ctx) calls
// fn(ctx, 0) on the calling thread and lets up to `threads - 1` workers join with fn(ctx, tid):
// the job must hand out its work through its own atomic counters (any participant may do any
// part), because a worker that wakes up late — asleep, or preempted on a busy machine — simply
// does not join a job that the others already finished. Workers spin briefly after a job (the
// kernels of a training step follow each other closely), then sleep on a condition variable.
#pragma once

namespace tsdpo {

using TaskFn = void (*)(void* ctx, int tid);

/** Runs fn on the calling thread and on up to threads - 1 pool workers; returns when all have left it. */
void pool_run(int threads, TaskFn fn, void* ctx);

}  // namespace tsdpo
