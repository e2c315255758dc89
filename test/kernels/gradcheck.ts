// Central finite differences in float64 for the gradient checks of the reference kernels.
import { assertClose } from './helpers.js';

/**
 * For L(x) = sum(w * f(x)), compares `analytic` (dL/dx from a grad kernel) with
 * (L(x + h e_i) - L(x - h e_i)) / 2h for every i.
 */
export function checkGrad(
  what: string,
  f: (x: Float64Array) => Float64Array,
  x: Float64Array,
  w: ArrayLike<number>,
  analytic: ArrayLike<number>,
  h = 1e-5,
  tol = 1e-7,
): void {
  const L = (v: Float64Array): number => {
    const y = f(v);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i] * y[i];
    return s;
  };
  const fd = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xp = x.slice(),
      xm = x.slice();
    xp[i] += h;
    xm[i] -= h;
    fd[i] = (L(xp) - L(xm)) / (2 * h);
  }
  assertClose(analytic, fd, `${what} vs finite differences`, tol, tol);
}
