// What every WebGPU kernel wrapper gets: the runtime, the buffer of a storage, a stand-in buffer
// for absent optional inputs, and scratch buffers from the pool.
import type { Storage } from '../../../core/backend.js';
import type { GpuRuntime } from '../runtime.js';
import type { GpuStorage } from '../storage.js';

export interface Ctx {
  readonly rt: GpuRuntime;
  /** A small buffer bound where an optional input (weight, bias, mask) is null. */
  readonly dummy: GPUBuffer;
  /** A small buffer bound where an optional output is not wanted. */
  readonly sink: GPUBuffer;
}

/** The GPU buffer behind a storage. */
export function buf(s: Storage): GPUBuffer {
  return (s as GpuStorage).buffer;
}

/** The buffer of an optional storage, or the stand-in. */
export function bufOr(ctx: Ctx, s: Storage | null): GPUBuffer {
  return s === null ? ctx.dummy : (s as GpuStorage).buffer;
}

/** A scratch buffer for `n` 4-byte values; release it right after recording its last use. */
export function scratch(ctx: Ctx, n: number): GPUBuffer {
  return ctx.rt.storage.acquire(Math.max(1, n) * 4);
}

export function release(ctx: Ctx, b: GPUBuffer): void {
  ctx.rt.storage.release(b);
}

/** Throws for a float64 operand: the WebGPU backend computes in float32 only. */
export function f32Only(fn: string, ...xs: (Storage | null)[]): void {
  for (const x of xs) {
    if (x !== null && x.dtype === 'f64')
      throw new Error(`webgpu ${fn}: float64 is not supported on WebGPU (use the cpu device)`);
  }
}
