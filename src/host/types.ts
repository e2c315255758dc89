// What tsdpo needs from the JavaScript runtime it runs in. Two implementations: host/node.ts
// (worker_threads, fs, v8 flags, the native addon, child processes) and host/web.ts (Web Workers,
// fetch). Code imports Node's as '#host', dynamically and only in Node: package.json's "imports"
// gives Node (the "node" condition) node.ts and every other runtime or bundler (browsers) web.ts, so
// that Node modules never enter a browser bundle's graph, and pages that load the modules unbundled
// never resolve '#host' at all.
import type { AdapterProbe, GpuOptions } from '../backend/webgpu/gpu.js';

/** A started CPU kernel thread. */
export interface WorkerHandle {
  terminate(): Promise<unknown>;
}

/** What the CPU runtime (backend/cpu/runtime.ts) needs from its host. */
export interface Platform {
  cores(): number;
  readAsset(url: URL): Promise<Uint8Array<ArrayBuffer>>;
  /** Turns relaxed SIMD on where it sits behind a flag; returns whether it may be available. */
  enableWasmRelaxedSimd(): boolean;
  /** Starts the kernel thread script at `url` and resolves once it reports that it is ready. */
  startWorker(url: URL, init: unknown): Promise<WorkerHandle>;
}

/** The host module's exports ('#host'); each implementation is checked against this. */
export interface Host {
  /** The CPU runtime's platform. */
  cpuPlatform(): Platform;
  /** The native addon at `path` relative to `base` (a module URL); throws when it cannot load. Node only. */
  requireAddon(path: string, base: string): unknown;
  /** Asks for a WebGPU adapter in a child process (backend/webgpu/probe.ts); Node only. */
  probeAdapterInChild(opts: GpuOptions): Promise<AdapterProbe>;
}
