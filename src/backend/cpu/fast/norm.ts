// Wrappers of assembly/norm.ts. Absent weights, biases or saved statistics are address 0.
import type { KernelRuntime } from '../runtime.js';
import { runColumns, runRows } from './split.js';

/** out = (x - mean) rstd w + b over rows of [N, D]; saves mean, rstd [N]. */
export function layernorm(
  rt: KernelRuntime,
  x: number,
  w: number,
  b: number,
  out: number,
  mean: number,
  rstd: number,
  N: number,
  D: number,
  eps: number,
): void {
  runRows(rt, 'layernorm', [x, w, b, out, mean, rstd, N, D, eps], N, D, 3);
}

/** dx of layernorm from the saved mean and rstd. */
export function layernormGrad(
  rt: KernelRuntime,
  x: number,
  w: number,
  mean: number,
  rstd: number,
  dy: number,
  dx: number,
  N: number,
  D: number,
): void {
  runRows(rt, 'layernorm_grad', [x, w, mean, rstd, dy, dx, N, D], N, D, 3);
}

/** dw = sum_r xhat dy, db = sum_r dy (written; either may be 0); threads split the columns. */
export function layernormWgrad(
  rt: KernelRuntime,
  x: number,
  mean: number,
  rstd: number,
  dy: number,
  dw: number,
  db: number,
  N: number,
  D: number,
): void {
  runColumns(rt, 'layernorm_wgrad', [x, mean, rstd, dy, dw, db, N, D], N, D, 2);
}

/** out = x rstd (offset + w); offset 1 for Gemma's (1 + w); saves rstd [N]. */
export function rmsnorm(
  rt: KernelRuntime,
  x: number,
  w: number,
  out: number,
  rstd: number,
  N: number,
  D: number,
  eps: number,
  offset = 0,
): void {
  runRows(rt, 'rmsnorm', [x, w, out, rstd, N, D, eps, offset], N, D, 2);
}

export function rmsnormGrad(
  rt: KernelRuntime,
  x: number,
  w: number,
  rstd: number,
  dy: number,
  dx: number,
  N: number,
  D: number,
  offset = 0,
): void {
  runRows(rt, 'rmsnorm_grad', [x, w, rstd, dy, dx, N, D, offset], N, D, 3);
}

/** dw = sum_r x rstd dy (written); threads split the columns. */
export function rmsnormWgrad(
  rt: KernelRuntime,
  x: number,
  rstd: number,
  dy: number,
  dw: number,
  N: number,
  D: number,
): void {
  runColumns(rt, 'rmsnorm_wgrad', [x, rstd, dy, dw, N, D], N, D, 2);
}
