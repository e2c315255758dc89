// Entry of a CPU kernel thread: receives the compiled module and the shared memory, reports
// that it is ready, then serves jobs from the control block (runtime.ts) until told to quit.
import { isNode } from './platform.js';
import { workerLoop, type WorkerInit } from './runtime.js';

if (isNode) {
  const { parentPort, workerData } = await import('node:worker_threads');
  const init = workerData as WorkerInit;
  await workerLoop(init, () => parentPort!.postMessage('ready'));
} else {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent) => void) | null;
    postMessage(m: unknown): void;
  };
  scope.onmessage = (e: MessageEvent) => {
    scope.onmessage = null;
    void workerLoop(e.data as WorkerInit, () => scope.postMessage('ready'));
  };
}
