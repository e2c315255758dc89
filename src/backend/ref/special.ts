// Special functions in float64 for the reference kernels: erf, erfc, and a sigmoid and softplus
// that stay accurate in both tails.

/**
 * erf in float64, |error| < 1e-15 over the whole line: the series
 * erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)) (positive terms, no
 * cancellation) below |x| = 2, and 1 - erfc(x) from erfc's continued fraction above.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (Number.isNaN(a)) return NaN;
  if (a >= 6) return Math.sign(x); // erfc(6) = 2e-17: erf rounds to +-1
  if (a < 2) {
    const a2 = a * a;
    let term = a,
      sum = a;
    for (let n = 1; term > 1e-17 * sum; n++) {
      term *= (2 * a2) / (2 * n + 1);
      sum += term;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a2) * sum;
  }
  return Math.sign(x) * (1 - erfcTail(a));
}

/** erfc(x) = 1 - erf(x) with relative error < 1e-15, also deep in the right tail. */
export function erfc(x: number): number {
  return x < 1 ? 1 - erf(x) : erfcTail(x);
}

/**
 * erfc(a) for a >= 1 by 200 terms of the continued fraction (A&S 7.1.14), evaluated backwards:
 * erfc(a) = exp(-a^2)/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))).
 */
function erfcTail(a: number): number {
  if (a === Infinity) return 0;
  let f = a;
  for (let k = 200; k > 0; k--) f = a + k / 2 / f;
  return Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** log(1 + exp(x)) without overflow. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}
