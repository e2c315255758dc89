// Wrappers of assembly/optim.ts: optimizer steps over n float32 parameters, and sumsq.
import { SUMSQ_CHUNK } from '../../ref/optim.js';
import type { KernelRuntime } from '../runtime.js';
import { runElements } from './split.js';

/**
 * One torch.optim.AdamW step; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t for step t (1-based).
 * p, m, v updated in place.
 */
export function adamw(
  rt: KernelRuntime,
  p: number,
  g: number,
  m: number,
  v: number,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  bc1: number,
  bc2: number,
): void {
  runElements(rt, 'adamw', [p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, bc1, bc2], n, 4);
}

/** One torch.optim.RMSprop step (no momentum, not centered). */
export function rmsprop(
  rt: KernelRuntime,
  p: number,
  g: number,
  sq: number,
  n: number,
  lr: number,
  alpha: number,
  eps: number,
  weightDecay: number,
): void {
  runElements(rt, 'rmsprop', [p, g, sq, n, lr, alpha, eps, weightDecay], n, 4);
}

/** One torch.optim.SGD step (dampening 0, no Nesterov); buf may be 0 when momentum is 0. */
export function sgd(
  rt: KernelRuntime,
  p: number,
  g: number,
  buf: number,
  n: number,
  lr: number,
  momentum: number,
  weightDecay: number,
): void {
  if (momentum !== 0 && buf === 0) throw new Error('sgd: momentum is not 0 but no momentum buffer was given');
  runElements(rt, 'sgd', [p, g, buf, n, lr, momentum, weightDecay], n, 2);
}

/** Number of float64 partials sumsq writes for n elements. */
export function sumsqChunks(n: number): number {
  return Math.ceil(n / SUMSQ_CHUNK);
}

/** out[c] (float64, 8-byte aligned) = sum of squares of chunk c of SUMSQ_CHUNK elements. */
export function sumsq(rt: KernelRuntime, x: number, n: number, out: number): void {
  if (out % 8 !== 0) throw new Error(`sumsq: output address ${out} is not 8-byte aligned (float64 partials)`);
  rt.run('sumsq', [x, n, out], sumsqChunks(n), 1, 1);
}
