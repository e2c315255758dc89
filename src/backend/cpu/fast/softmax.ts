// Wrappers of assembly/softmax.ts (work unit: rows). Addresses are bytes; targets are int32.
import type { KernelRuntime } from '../runtime.js';
import { runRows } from './split.js';

/** Cost per element relative to a copy: one SIMD exp is about 8. */
const EXP = 8;

export function softmax(rt: KernelRuntime, x: number, out: number, N: number, D: number): void {
  runRows(rt, 'softmax', [x, out, N, D], N, D, EXP);
}

export function logSoftmax(rt: KernelRuntime, x: number, out: number, N: number, D: number): void {
  runRows(rt, 'log_softmax', [x, out, N, D], N, D, EXP);
}

/** dx = y (dy - sum(dy y)), y = softmax output. */
export function softmaxGrad(rt: KernelRuntime, y: number, dy: number, dx: number, N: number, D: number): void {
  runRows(rt, 'softmax_grad', [y, dy, dx, N, D], N, D, 2);
}

/** dx = dy - exp(y) sum(dy), y = log_softmax output. */
export function logSoftmaxGrad(rt: KernelRuntime, y: number, dy: number, dx: number, N: number, D: number): void {
  runRows(rt, 'log_softmax_grad', [y, dy, dx, N, D], N, D, EXP);
}

/**
 * out[r] = logits[r, t] - logsumexp(logits[r]), t = targets[r] (int32; -100 gives 0).
 * Throws "index out of range" for a target outside [0, V).
 */
export function logsoftmaxGather(
  rt: KernelRuntime,
  logits: number,
  targets: number,
  out: number,
  N: number,
  V: number,
): void {
  runRows(rt, 'logsoftmax_gather', [logits, targets, out, N, V], N, V, EXP);
}

/** dlogits[r] = dy[r] (onehot(t) - softmax(logits[r])); rows with t = -100 get 0. */
export function logsoftmaxGatherGrad(
  rt: KernelRuntime,
  logits: number,
  targets: number,
  dy: number,
  dlogits: number,
  N: number,
  V: number,
): void {
  runRows(rt, 'logsoftmax_gather_grad', [logits, targets, dy, dlogits, N, V], N, V, 2 * EXP);
}
