// The host in browsers and other runtimes without Node's modules ('#host' by default;
// host/types.ts): kernel threads on module Web Workers, assets by fetch. There is no native addon
// and no child process here; the engine asks for neither outside Node.
import type { Host, Platform } from './types.js';

const platform: Platform = {
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

export const cpuPlatform: Host['cpuPlatform'] = () => platform;

export const requireAddon: Host['requireAddon'] = (path) => {
  throw new Error(`requireAddon(${path}): native addons load in Node only`);
};

export const probeAdapterInChild: Host['probeAdapterInChild'] = async () => ({
  ok: false,
  reason: 'the WebGPU adapter probe runs a child process, which exists in Node only',
});
