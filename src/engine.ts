// Engine start-up: creates the backend for a device name and makes it the default.
// 'cpu' is the WebAssembly backend on all cores; 'webgpu' and 'auto' are resolved here too.
import { setBackend, type Backend } from './core/backend.js';
import { CpuBackend } from './backend/cpu/backend.js';
import { loadNative, nativeAllowed } from './backend/cpu/native.js';
import { KernelRuntime } from './backend/cpu/runtime.js';

export type DeviceName = 'cpu' | 'webgpu' | 'auto';
export const DEVICES: DeviceName[] = ['auto', 'cpu', 'webgpu'];

export interface EngineOptions {
  device?: DeviceName;
  /** CPU threads including the caller (default: all cores). */
  threads?: number;
  /** CPU: use the WebAssembly kernels for float32 (default true). */
  fast?: boolean;
  /** CPU: float32 matmul and attention in the native addon when it is built (Node; default true; TSDPO_NATIVE=0 turns it off). */
  native?: boolean;
  /** Where notices (e.g. a fallback to CPU) go. */
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
    cpu = Promise.all([KernelRuntime.create({ threads: opts.threads }), native ? loadNative() : null])
      .then(([rt, addon]) => new CpuBackend(rt, { fast: opts.fast, native: addon !== null }));
  }
  return cpu;
}

/** Creates the backend for `device`, sets it as the default and returns it. */
export async function initEngine(opts: EngineOptions = {}): Promise<Backend> {
  const device = opts.device ?? 'auto';
  let backend: Backend;
  if (device === 'cpu' || device === 'auto') {
    backend = await cpuBackend(opts);
  } else {
    throw new Error(`device '${device}' is not available in this build (devices: ${DEVICES.join(', ')})`);
  }
  setBackend(backend);
  return backend;
}
