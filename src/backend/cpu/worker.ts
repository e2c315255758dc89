// Entry of a CPU kernel thread: receives the compiled module and the shared memory, reports
// that it is ready, then serves jobs from the control block (runtime.ts) until told to quit.
// It speaks a Web Worker's protocol (the start-up data is the first message, `postMessage` answers)
// and imports no host module, so that browsers load it as it is, bundled or not; in Node,
// host/node.ts starts it behind a few lines that give worker_threads the same two globals.
import { workerLoop, type WorkerInit } from './runtime.js';

const scope = globalThis as unknown as {
  onmessage: ((e: { data: unknown }) => void) | null;
  postMessage(m: unknown): void;
};
scope.onmessage = (e) => {
  scope.onmessage = null;
  void workerLoop(e.data as WorkerInit, () => scope.postMessage('ready'));
};
