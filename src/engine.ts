// Engine start-up: creates the backend for a device name and makes it the default.
// 'cpu' is the WebAssembly backend on all cores; 'webgpu' is the WebGPU backend (Dawn in Node,
// navigator.gpu in browsers, software adapters such as lavapipe accepted); 'auto' takes WebGPU
// when a hardware adapter answers and falls back to the CPU with a one-line notice otherwise.
import { setBackend, type Backend } from './core/backend.js';
import { CpuBackend } from './backend/cpu/backend.js';
import { loadNative, nativeAllowed } from './backend/cpu/native.js';
import { KernelRuntime } from './backend/cpu/runtime.js';
import { WebGpuBackend } from './backend/webgpu/backend.js';

export type DeviceName = 'cpu' | 'webgpu' | 'auto';
export const DEVICES: DeviceName[] = ['auto', 'cpu', 'webgpu'];

export interface EngineOptions {
  device?: DeviceName;
  /** CPU threads including the caller (default: all cores). */
  threads?: number;
  /** CPU: use the WebAssembly kernels for float32 (default true). */
  fast?: boolean;
  /**
   * CPU: float32 matmul and attention in the native addon when it is built (Node; default true; TSDPO_NATIVE=0 turns it
   * off).
   */
  native?: boolean;
  /**
   * CPU: bytes of the WebAssembly memory (at most 4 GiB) tensors may hold before the least recently
   * used move to host memory (default: all of it; TSDPO_CPU_MEMORY_MB sets it in MiB).
   */
  cpuMemory?: number;
  /** Where notices (e.g. a fallback to CPU) go (default: stderr / console.warn). */
  log?: (message: string) => void;
}

let cpu: Promise<CpuBackend> | null = null;
let cpuKey = '';

/** The CPU backend (created once per thread count / kernel choice). */
export function cpuBackend(opts: EngineOptions = {}): Promise<CpuBackend> {
  const native = (opts.native ?? true) && nativeAllowed();
  const key = `${opts.threads ?? 0}/${opts.fast ?? true}/${native}`;
  if (cpu === null || key !== cpuKey) {
    cpuKey = key;
    cpu = Promise.all([KernelRuntime.create({ threads: opts.threads }), native ? loadNative() : null]).then(
      ([rt, addon]) => new CpuBackend(rt, { fast: opts.fast, native: addon !== null }),
    );
  }
  const limit = opts.cpuMemory ?? envMiB('TSDPO_CPU_MEMORY_MB');
  if (limit !== undefined) return cpu.then((b) => ((b.rt.limitBytes = limit), b));
  return cpu;
}

function envMiB(name: string): number | undefined {
  const v = typeof process !== 'undefined' ? process.env?.[name] : undefined;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!(n > 0)) throw new Error(`${name}=${v}: expected a positive number of MiB`);
  return n * 2 ** 20;
}

let gpu: Promise<WebGpuBackend> | null = null;
const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/**
 * The WebGPU backend (one device per process). `allowFallback` accepts a software adapter;
 * 'auto' does not, so that CPU-only machines train on the faster CPU backend (in Node without
 * loading Dawn in this process).
 */
export async function webgpuBackend(allowFallback = true): Promise<WebGpuBackend> {
  if (gpu === null && !allowFallback && isNode) {
    // Look in a child process first: Dawn prints warnings while it looks (backend/webgpu/probe.ts).
    const { probeAdapterInChild } = await import('#host');
    const found = await probeAdapterInChild({ allowFallback });
    if (!found.ok) throw new Error(`webgpu: ${found.reason}`);
  }
  if (gpu === null) {
    const made = WebGpuBackend.create({ allowFallback });
    gpu = made;
    made.catch(() => {
      if (gpu === made) gpu = null;
    });
  }
  const b = await gpu;
  if (b.fallbackAdapter && !allowFallback)
    throw new Error(`webgpu: the only WebGPU adapter, ${b.adapter}, runs on the CPU`);
  return b;
}

/** Creates the backend for `device`, sets it as the default and returns it. */
export async function initEngine(opts: EngineOptions = {}): Promise<Backend> {
  const device = opts.device ?? 'auto';
  const log = opts.log ?? ((m: string) => console.warn(m));
  let backend: Backend;
  if (device === 'cpu') {
    backend = await cpuBackend(opts);
  } else if (device === 'webgpu') {
    backend = await webgpuBackend(true);
  } else if (device === 'auto') {
    try {
      backend = await webgpuBackend(false);
    } catch (e) {
      log(`tsdpo: ${(e as Error).message.replace(/^webgpu: /, '')}; using the CPU backend (--device cpu)`);
      backend = await cpuBackend(opts);
    }
  } else {
    throw new Error(`device '${device as string}' is not available in this build (devices: ${DEVICES.join(', ')})`);
  }
  setBackend(backend);
  return backend;
}
