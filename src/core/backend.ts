// The backend interface: memory (alloc / free / write / read) plus one kernel per entry of
// KernelArgs. The core talks to devices only through this; it never imports a backend.
import type { DType, TypedArray } from './dtype.js';
import type { KernelTable } from './kernels.js';

/** Device memory holding `size` elements of `dtype`. Views (reshape, detach) share one Storage. */
export interface Storage {
  readonly backend: Backend;
  readonly dtype: DType;
  readonly size: number;
  /** Number of tensors using this storage; freed when it drops to 0. */
  refs: number;
}

export interface Backend {
  readonly name: string;
  supports(dtype: DType): boolean;
  /** Uninitialised memory for `size` elements (`shape` lets a backend split a tensor by rows). */
  alloc(dtype: DType, size: number, shape?: readonly number[]): Storage;
  free(storage: Storage): void;
  /** Copies host data into the storage, starting at element `offset`. */
  write(storage: Storage, data: ArrayLike<number>, offset?: number): void;
  /** Copies the storage (or elements [start, end)) to the host. */
  read(storage: Storage, start?: number, end?: number): Promise<TypedArray>;
  /** Synchronous read, only where memory is host-visible (CPU); used by debug checks. */
  readSync?(storage: Storage, start?: number, end?: number): TypedArray;
  /**
   * The storage's values where they lie, without a copy, where memory is host-visible (CPU); valid
   * only until the next kernel or allocation (file writers use it to save a model without copying it).
   */
  peekSync?(storage: Storage): TypedArray;
  readonly kernels: KernelTable;
  /** Bytes held by live storages, for memory tests and reports. */
  liveBytes(): number;
  /** Largest tensor (bytes) a kernel binds whole, where the device has such a limit (WebGPU). */
  readonly bindingLimit?: number;
  /** Highest liveBytes since the last resetPeak, where the backend tracks it (CPU, WebGPU). */
  readonly peak?: number;
  resetPeak?(): void;
  /** Tensors moved out of kernel-addressable memory to host memory, where the backend does that (CPU). */
  readonly spill?: {
    readonly peakSpilledBytes: number;
    readonly residentAtPeak: number;
    readonly spills: number;
    readonly movedBytes: number;
  };
}

let current: Backend | null = null;

/** Sets the backend that new tensors are created on. */
export function setBackend(backend: Backend): void {
  current = backend;
}

export function getBackend(): Backend {
  if (current === null) {
    throw new Error('no backend: call `await initEngine()` (or setBackend) before creating tensors');
  }
  return current;
}

export function hasBackend(): boolean {
  return current !== null;
}
