// Elementwise functions of one input and their derivatives (reference kernels), from the float64
// forms of the table in ../elementwise-ops.ts.
import type { UnaryOp } from '../../core/kernels.js';
import { UNARY_CODES, UNARY_DEFS, UNARY_OP_NAMES } from '../elementwise-ops.js';
import type { F } from './types.js';

export { erf, erfc } from './special.js';
export type { UnaryOp };

/** Op codes shared with the WebAssembly kernels (generated assembly/unary.ts). */
export const UNARY_OPS: Readonly<Record<UnaryOp, number>> = UNARY_CODES;

export const UNARY = Object.fromEntries(UNARY_OP_NAMES.map((op) => [op, UNARY_DEFS[op].ref.f])) as Record<
  UnaryOp,
  (x: number) => number
>;

/** Derivatives f'(x), written to keep full relative accuracy in the tails (no 1 - s or 1 - t^2). */
export const UNARY_GRAD = Object.fromEntries(UNARY_OP_NAMES.map((op) => [op, UNARY_DEFS[op].ref.df])) as Record<
  UnaryOp,
  (x: number) => number
>;

export function unary(op: UnaryOp, x: F, out: F, n: number): void {
  const f = UNARY[op];
  for (let i = 0; i < n; i++) out[i] = f(x[i]);
}

export function unaryGrad(op: UnaryOp, x: F, dy: F, dx: F, n: number): void {
  const f = UNARY_GRAD[op];
  for (let i = 0; i < n; i++) dx[i] = f(x[i]) * dy[i];
}
