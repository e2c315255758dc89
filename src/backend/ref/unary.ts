// Elementwise functions of one input and their derivatives (reference kernels).
import type { F } from './types.js';

/** Op codes shared with the WebAssembly kernels (kernels/unary.ts). */
export const UNARY_OPS = {
  neg: 0, exp: 1, log: 2, tanh: 3, sigmoid: 4, logsigmoid: 5, softplus: 6, relu: 7,
  gelu_tanh: 8, gelu_erf: 9, silu: 10, sqrt: 11, rsqrt: 12, square: 13, abs: 14, recip: 15,
} as const;
export type UnaryOp = keyof typeof UNARY_OPS;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT2 = Math.SQRT1_2;

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), enough for float64 checks. */
export function erf(x: number): number {
  const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
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
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
  gelu_erf: (x) => 0.5 * x * (1 + erf(x * INV_SQRT2)),
  silu: (x) => x * sigmoid(x),
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  square: (x) => x * x,
  abs: Math.abs,
  recip: (x) => 1 / x,
};

/** Derivatives f'(x). */
export const UNARY_GRAD: Record<UnaryOp, (x: number) => number> = {
  neg: () => -1,
  exp: Math.exp,
  log: (x) => 1 / x,
  tanh: (x) => 1 - Math.tanh(x) ** 2,
  sigmoid: (x) => sigmoid(x) * (1 - sigmoid(x)),
  logsigmoid: (x) => 1 - sigmoid(x),
  softplus: sigmoid,
  relu: (x) => (x > 0 ? 1 : 0),
  gelu_tanh: (x) => {
    const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x), t = Math.tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
  },
  gelu_erf: (x) => 0.5 * (1 + erf(x * INV_SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI),
  silu: (x) => sigmoid(x) * (1 + x * (1 - sigmoid(x))),
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
