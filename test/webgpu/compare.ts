// Runs one op on the CPU backend and on the WebGPU backend (float32 on both) and compares the
// outputs and the gradients that backward gives every input, for L = sum(f(inputs) * R) with a
// fixed random R. The CPU backend's kernels are themselves tested against the float64
// references (test/kernels) and finite differences (test/core/grad.test.ts).
import assert from 'node:assert/strict';
import * as E from '../../src/core/index.js';
import type { Backend, Tensor } from '../../src/core/index.js';
import { cpuBackend } from '../../src/engine.js';
import { rng } from '../kernels/helpers.js';
import { gpu } from './gpu.js';

export interface In {
  values: ArrayLike<number>;
  shape: number[];
  /** int32 (ids); never differentiated. */
  int?: boolean;
  /** Differentiate with respect to this input (default: float inputs). */
  grad?: boolean;
}

let seed = 1;
/** Uniform float input in [lo, hi). */
export function inp(shape: number[], lo = -1, hi = 1): In {
  const r = rng(seed++),
    n = shape.reduce((a, b) => a * b, 1);
  return { values: Float32Array.from({ length: n }, () => lo + (hi - lo) * r()), shape };
}

export function ints(shape: number[], hi: number, lo = 0): In {
  const r = rng(seed++),
    n = shape.reduce((a, b) => a * b, 1);
  return { values: Int32Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo))), shape, int: true };
}

export function fixed(values: ArrayLike<number>, shape: number[]): In {
  return { values: Float32Array.from(values), shape, grad: false };
}

/** max |a - b| / max(max |b|, tiny): the error relative to the expected tensor's magnitude. */
export function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs ${expected.length}`);
  let diff = 0,
    mag = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i],
      e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) return Infinity;
      continue;
    }
    diff = Math.max(diff, Math.abs(a - e));
    mag = Math.max(mag, Math.abs(e));
  }
  return diff / Math.max(mag, 1e-30);
}

export function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  const err = relErr(actual, expected);
  assert.ok(err <= tol, `${what}: WebGPU vs CPU relative error ${err.toExponential(2)} > ${tol}`);
}

interface Run {
  out: Float32Array | Int32Array;
  grads: (Float32Array | null)[];
}

async function runOn(be: Backend, f: (xs: Tensor[]) => Tensor, inputs: In[], backward: boolean): Promise<Run> {
  return E.tidyAsync(async () => {
    const xs = inputs.map((i) => {
      const t = E.tensor(
        i.int ? Int32Array.from(i.values) : Float32Array.from(i.values),
        i.shape,
        i.int ? 'i32' : 'f32',
        be,
      );
      if (backward && !i.int && i.grad !== false) t.requiresGrad = true;
      return t;
    });
    const y = f(xs);
    const out = (await y.toArray()) as Float32Array | Int32Array;
    const grads: (Float32Array | null)[] = xs.map(() => null);
    if (backward && y.requiresGrad) {
      const r = rng(12345);
      const weights = Float32Array.from({ length: y.size }, () => r() * 2 - 1);
      E.backward(E.sum(E.mul(y, E.tensor(weights, y.shape, 'f32', be))));
      for (let k = 0; k < xs.length; k++)
        grads[k] = xs[k].grad ? ((await xs[k].grad!.toArray()) as Float32Array) : null;
    }
    return { out, grads };
  });
}

/**
 * Asserts that f gives the same output and input gradients on WebGPU as on the CPU within `tol`
 * (relative to each tensor's magnitude).
 */
export async function compareOp(
  name: string,
  f: (xs: Tensor[]) => Tensor,
  inputs: In[],
  opts: { tol?: number; gradTol?: number; backward?: boolean } = {},
): Promise<void> {
  const tol = opts.tol ?? 1e-5,
    gradTol = opts.gradTol ?? tol,
    backward = opts.backward ?? true;
  const cpu = await runOn(await cpuBackend({ threads: 1 }), f, inputs, backward);
  const wg = await runOn(gpu(), f, inputs, backward);
  expectClose(`${name} output`, wg.out, cpu.out, tol);
  inputs.forEach((_, k) => {
    const c = cpu.grads[k],
      g = wg.grads[k];
    assert.equal(g === null, c === null, `${name}: input ${k} has a gradient on one backend only`);
    if (c && g) expectClose(`${name} gradient of input ${k}`, g, c, gradTol);
  });
}
