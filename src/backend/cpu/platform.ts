// What the CPU runtime needs from its host, for Node (worker_threads, fs, v8 flags) and for
// browsers (Web Workers, fetch). Node modules are imported only on the Node path, so a browser
// bundle of the engine never touches them.
import type { WorkerInit } from './runtime.js';

export interface WorkerHandle {
  terminate(): Promise<unknown>;
}

export interface Platform {
  cores(): number;
  readAsset(url: URL): Promise<Uint8Array<ArrayBuffer>>;
  /** Turns relaxed SIMD on where it sits behind a flag; returns whether it may be available. */
  enableWasmRelaxedSimd(): boolean;
  startWorker(url: URL, init: WorkerInit): Promise<WorkerHandle>;
}

export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

let platform: Promise<Platform> | null = null;

export function loadPlatform(): Promise<Platform> {
  platform ??= isNode ? nodePlatform() : Promise.resolve(webPlatform());
  return platform;
}

async function nodePlatform(): Promise<Platform> {
  const [{ readFile }, os, v8, { Worker }] = await Promise.all([
    import('node:fs/promises'),
    import('node:os'),
    import('node:v8'),
    import('node:worker_threads'),
  ]);
  let flagged = false;
  return {
    cores: () => (typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length),
    readAsset: async (url) => new Uint8Array(await readFile(url)),
    enableWasmRelaxedSimd: () => {
      if (!flagged) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      flagged = true;
      return true;
    },
    startWorker: (url, init) =>
      new Promise((resolve, reject) => {
        const worker = new Worker(url, { workerData: init });
        worker.unref();
        worker.once('message', () => resolve(worker));
        worker.once('error', reject);
      }),
  };
}

function webPlatform(): Platform {
  return {
    cores: () => globalThis.navigator?.hardwareConcurrency ?? 1,
    readAsset: async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer()),
    enableWasmRelaxedSimd: () => true,
    startWorker: (url, init) =>
      new Promise((resolve, reject) => {
        const worker = new Worker(url, { type: 'module' });
        worker.onmessage = () => resolve({ terminate: async () => worker.terminate() });
        worker.onerror = (e) => reject(new Error(`cpu worker failed to start: ${e.message}`));
        worker.postMessage(init);
      }),
  };
}
