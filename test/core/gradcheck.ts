// Finite-difference gradient checking in float64: compares autograd's gradient of
// L = sum(f(inputs) * R) (R fixed random) with central differences of L.
import assert from 'node:assert/strict';
import { backward, mul, sum, tensor, tidy, type Tensor, Rng } from '../../src/core/index.js';

export interface Input {
  /** Host values (float64). */
  values: Float64Array;
  shape: number[];
  /** Differentiate with respect to this input (default true). */
  grad?: boolean;
  /** An int32 input (indices): never differentiated. */
  int?: boolean;
}

export function randomValues(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * rng.next());
}

export function input(rng: Rng, shape: number[], lo = -1, hi = 1): Input {
  return {
    values: randomValues(
      rng,
      shape.reduce((a, b) => a * b, 1),
      lo,
      hi,
    ),
    shape,
  };
}

function evaluate(
  f: (xs: Tensor[]) => Tensor,
  inputs: Input[],
  weights: Float64Array | null,
): { out: Float64Array; loss: number } {
  return tidy(() => {
    const xs = inputs.map((i) => tensor(i.int ? Int32Array.from(i.values) : i.values, i.shape, i.int ? 'i32' : 'f64'));
    const y = f(xs);
    const out = Float64Array.from(y.backend.readSync!(y.storage));
    let loss = 0;
    if (weights) for (let i = 0; i < out.length; i++) loss += out[i] * weights[i];
    return { out, loss };
  });
}

/**
 * Asserts that autograd's gradients of every differentiable input match central differences
 * within `tol` (relative to max(1, |numeric|)).
 */
export function gradCheck(
  name: string,
  f: (xs: Tensor[]) => Tensor,
  inputs: Input[],
  seed = 1,
  tol = 1e-6,
  h = 1e-6,
): void {
  const rng = new Rng(seed);
  const { out } = evaluate(f, inputs, null);
  const weights = randomValues(rng, out.length);
  const analytic = tidy(() => {
    const xs = inputs.map((i) => {
      const t = tensor(i.int ? Int32Array.from(i.values) : i.values, i.shape, i.int ? 'i32' : 'f64');
      if (!i.int && i.grad !== false) t.requiresGrad = true;
      return t;
    });
    const y = f(xs);
    const loss = sum(mul(y, tensor(weights, y.shape, 'f64')));
    backward(loss);
    return xs.map((x) => (x.grad ? Float64Array.from(x.grad.backend.readSync!(x.grad.storage)) : null));
  });
  inputs.forEach((inp, k) => {
    if (inp.int || inp.grad === false) return;
    const g = analytic[k];
    assert.ok(g, `${name}: input ${k} got no gradient`);
    for (let i = 0; i < inp.values.length; i++) {
      const orig = inp.values[i];
      inp.values[i] = orig + h;
      const up = evaluate(f, inputs, weights).loss;
      inp.values[i] = orig - h;
      const down = evaluate(f, inputs, weights).loss;
      inp.values[i] = orig;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(numeric - g[i]) / Math.max(1, Math.abs(numeric));
      assert.ok(
        err <= tol,
        `${name}: d/d input${k}[${i}] autograd ${g[i]} vs finite difference ${numeric} (err ${err.toExponential(2)})`,
      );
    }
  });
}
