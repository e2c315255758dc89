// Shared plumbing of the ops: backend checks, output allocation, and the debug check that
// every kernel output is finite.
import type { Backend } from '../backend.js';
import type { KernelTable } from '../kernels.js';
import { empty, type Tensor } from '../tensor.js';
import type { DType } from '../dtype.js';
import { fmt, type Shape } from '../shape.js';

/** The common backend of the inputs; throws naming the op when they differ. */
export function backendOf(op: string, ...xs: (Tensor | null | undefined)[]): Backend {
  let b: Backend | null = null;
  for (const x of xs) {
    if (!x) continue;
    if (b === null) b = x.backend;
    else if (x.backend !== b)
      throw new Error(`${op}: inputs live on different backends (${b.name}, ${x.backend.name})`);
  }
  if (b === null) throw new Error(`${op}: no tensor input`);
  return b;
}

export function kernelsOf(op: string, ...xs: (Tensor | null | undefined)[]): KernelTable {
  return backendOf(op, ...xs).kernels;
}

export function alloc(shape: Shape, dtype: DType, like: Tensor): Tensor {
  return empty(shape, dtype, like.backend);
}

export function expectFloat(op: string, x: Tensor, what = 'input'): void {
  if (x.dtype === 'i32') throw new Error(`${op}: ${what} ${x.describe()} must be a float tensor`);
  if (x.dtype === 'bf16')
    throw new Error(
      `${op}: ${what} ${x.describe()} is a bfloat16 frozen weight, ` +
        `which only matmul / linear (as the weight) and embedding read`,
    );
}

/**
 * A weight operand that may be a bfloat16 frozen weight beside an f32 input (matmul's b, linear's
 * weight, embedding's table): otherwise the dtypes must match. A bf16 weight takes no gradient.
 */
export function expectWeight(op: string, x: Tensor, w: Tensor): void {
  if (w.dtype !== 'bf16') {
    expectSameDtype(op, x, w);
    return;
  }
  if (x.dtype !== 'f32')
    throw new Error(`${op}: the bfloat16 weight ${w.describe()} multiplies f32 inputs only, got ${x.describe()}`);
  if (w.requiresGrad)
    throw new Error(
      `${op}: ${w.describe()} is a bfloat16 frozen weight and ` +
        `cannot be trained (load it as float32: frozen_dtype float32)`,
    );
}

export function expectDtype(op: string, x: Tensor, dtype: DType, what = 'input'): void {
  if (x.dtype !== dtype) throw new Error(`${op}: ${what} must be ${dtype}, got ${x.describe()}`);
}

export function expectSameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtypes differ: ${a.describe()} vs ${b.describe()}`);
}

export function expectRank(op: string, x: Tensor, rank: number, what = 'input', hint = ''): void {
  if (x.ndim !== rank)
    throw new Error(`${op}: ${what} must have ${rank} dims, got ${fmt(x.shape)}${hint ? ` (${hint})` : ''}`);
}

// ---- Debug mode: check every op output for NaN / inf -----------------------------------------

let debugFinite = typeof process !== 'undefined' && process.env?.TSDPO_DEBUG_NAN === '1';

/** Turns on (or off) the check that every op output is finite; it names the first op that fails. */
export function setDebugNaN(on: boolean): void {
  debugFinite = on;
}

/** Called by every op on its outputs. */
export function checked<T extends Tensor>(op: string, out: T, inputs: readonly Tensor[] = []): T {
  if (!debugFinite || out.dtype === 'i32') return out;
  const read = out.backend.readSync;
  if (read === undefined) return out; // devices without host-visible memory skip the check
  const data = read.call(out.backend, out.storage);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const ins = inputs.map((t) => t.describe()).join(', ');
      throw new Error(`debug: ${op} produced ${data[i]} at flat index ${i} of ${out.describe()} (inputs: ${ins})`);
    }
  }
  return out;
}
