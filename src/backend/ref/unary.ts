// Elementwise functions of one input and their derivatives (reference kernels).
import type { F } from './types.js';

/** Op codes shared with the WebAssembly kernels (assembly/unary.ts). */
export const UNARY_OPS = {
  neg: 0, exp: 1, log: 2, tanh: 3, sigmoid: 4, logsigmoid: 5, softplus: 6, relu: 7,
  gelu_tanh: 8, gelu_erf: 9, silu: 10, sqrt: 11, rsqrt: 12, square: 13, abs: 14, recip: 15,
} as const;
export type UnaryOp = keyof typeof UNARY_OPS;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT2 = Math.SQRT1_2;

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
    let term = a, sum = a;
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

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** log(1 + exp(x)) without overflow. */
function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

export const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  tanh: Math.tanh,
  sigmoid,
  logsigmoid: (x) => -softplus(-x),
  softplus,
  relu: (x) => (x > 0 ? x : 0),
  // 0.5 x (1 + tanh(u)) = x sigmoid(2u): the same function without cancellation for x << 0
  gelu_tanh: (x) => x * sigmoid(2 * SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)),
  gelu_erf: (x) => 0.5 * x * erfc(-x * INV_SQRT2),
  silu: (x) => x * sigmoid(x),
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  square: (x) => x * x,
  abs: Math.abs,
  recip: (x) => 1 / x,
};

/** Derivatives f'(x), written to keep full relative accuracy in the tails (no 1 - s or 1 - t^2). */
export const UNARY_GRAD: Record<UnaryOp, (x: number) => number> = {
  neg: () => -1,
  exp: Math.exp,
  log: (x) => 1 / x,
  tanh: (x) => 1 / Math.cosh(x) ** 2,
  sigmoid: (x) => sigmoid(x) * sigmoid(-x),
  logsigmoid: (x) => sigmoid(-x),
  softplus: sigmoid,
  relu: (x) => (x > 0 ? 1 : 0),
  gelu_tanh: (x) => {
    // d/dx x s(2u) = s + 2 x s (1 - s) u', u' = sqrt(2/pi) (1 + 3 0.044715 x^2)
    const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x), s = sigmoid(2 * u);
    return s + 2 * x * s * sigmoid(-2 * u) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
  },
  gelu_erf: (x) => 0.5 * erfc(-x * INV_SQRT2) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI),
  silu: (x) => sigmoid(x) * (1 + x * sigmoid(-x)),
  sqrt: (x) => 0.5 / Math.sqrt(x),
  rsqrt: (x) => -0.5 / (x * Math.sqrt(x)),
  square: (x) => 2 * x,
  abs: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  recip: (x) => -1 / (x * x),
};

export function unary(op: UnaryOp, x: F, out: F, n: number): void {
  const f = UNARY[op];
  for (let i = 0; i < n; i++) out[i] = f(x[i]);
}

export function unaryGrad(op: UnaryOp, x: F, dy: F, dx: F, n: number): void {
  const f = UNARY_GRAD[op];
  for (let i = 0; i < n; i++) dx[i] = f(x[i]) * dy[i];
}
