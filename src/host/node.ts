// The host in Node ('#host' under the "node" condition; host/types.ts): kernel threads on
// worker_threads, assets from the file system, the V8 flag for relaxed SIMD, the native addon
// through require, the WebGPU adapter probe in a child process.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { probeAdapterInChild } from '../backend/webgpu/probe.js';
import type { Host, Platform } from './types.js';

let flagged = false;

// The kernel thread script (backend/cpu/worker.ts) speaks a Web Worker's protocol: this start-up
// code gives it `postMessage` and hands it the start-up data as its first message.
const BOOT = `const { parentPort, workerData } = require('node:worker_threads');
globalThis.postMessage = (m) => parentPort.postMessage(m);
import(workerData.url).then(() => globalThis.onmessage({ data: workerData.init }));`;

const platform: Platform = {
  cores: () => (typeof availableParallelism === 'function' ? availableParallelism() : cpus().length),
  readAsset: async (url) => new Uint8Array(await readFile(url)),
  enableWasmRelaxedSimd: () => {
    if (!flagged) setFlagsFromString('--experimental-wasm-relaxed-simd');
    flagged = true;
    return true;
  },
  startWorker: (url, init) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(BOOT, { eval: true, workerData: { url: url.href, init } });
      worker.unref();
      worker.once('message', () => resolve(worker));
      worker.once('error', reject);
    }),
};

export const cpuPlatform: Host['cpuPlatform'] = () => platform;

export const requireAddon: Host['requireAddon'] = (path, base) => createRequire(base)(path);

export { probeAdapterInChild };
