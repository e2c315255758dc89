// Engine start-up: creates the backend for a device name and makes it the default.
// 'cpu' is the WebAssembly backend on all cores; 'webgpu' and 'auto' are resolved here too.
import { setBackend, type Backend } from './core/backend.js';
import { CpuBackend } from './backend/cpu/backend.js';
import { KernelRuntime } from './backend/cpu/runtime.js';

export type DeviceName = 'cpu' | 'webgpu' | 'auto';
export const DEVICES: DeviceName[] = ['auto', 'cpu', 'webgpu'];

export interface EngineOptions {
  device?: DeviceName;
  /** CPU threads including the caller (default: all cores). */
  threads?: number;
  /** CPU: use the WebAssembly kernels for float32 (default true). */
  fast?: boolean;
  /** Where notices (e.g. a fallback to CPU) go. */
  log?: (message: string) => void;
}

let cpu: Promise<CpuBackend> | null = null;
let cpuKey = '';

/** The CPU backend (created once per thread count / kernel choice). */
export function cpuBackend(opts: EngineOptions = {}): Promise<CpuBackend> {
  const key = `${opts.threads ?? 0}/${opts.fast ?? true}`;
  if (cpu === null || key !== cpuKey) {
    cpuKey = key;
    cpu = KernelRuntime.create({ threads: opts.threads }).then((rt) => new CpuBackend(rt, { fast: opts.fast }));
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
