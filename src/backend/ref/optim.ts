// Optimizer steps (torch.optim semantics) and the sum of squares used for gradient clipping
// (reference kernels). All update their state arrays in place.
import type { F } from './types.js';

/**
 * torch.optim.AdamW, one step for n parameters (Loshchilov & Hutter, arXiv:1711.05101, Alg. 2):
 *   p -= lr wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   p -= lr (m / bc1) / (sqrt(v / bc2) + eps)
 * with bias corrections bc1 = 1 - b1^t, bc2 = 1 - b2^t for step t (1-based) given by the caller.
 */
export function adamw(
  p: F,
  g: F,
  m: F,
  v: F,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  bc1: number,
  bc2: number,
): void {
  for (let i = 0; i < n; i++) {
    p[i] -= lr * weightDecay * p[i];
    m[i] = beta1 * m[i] + (1 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    p[i] -= (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + eps);
  }
}

/**
 * torch.optim.RMSprop without momentum, not centered:
 *   g += wd p;  sq = alpha sq + (1 - alpha) g^2;  p -= lr g / (sqrt(sq) + eps)
 */
export function rmsprop(
  p: F,
  g: F,
  sq: F,
  n: number,
  lr: number,
  alpha: number,
  eps: number,
  weightDecay: number,
): void {
  for (let i = 0; i < n; i++) {
    const gi = g[i] + weightDecay * p[i];
    sq[i] = alpha * sq[i] + (1 - alpha) * gi * gi;
    p[i] -= (lr * gi) / (Math.sqrt(sq[i]) + eps);
  }
}

/**
 * torch.optim.SGD (dampening 0, no Nesterov): g += wd p; buf = momentum buf + g; p -= lr buf.
 * torch starts buf at g on the first step, which is what a zeroed buf gives. With momentum 0
 * buf is not used (may be null).
 */
export function sgd(p: F, g: F, buf: F | null, n: number, lr: number, momentum: number, weightDecay: number): void {
  for (let i = 0; i < n; i++) {
    let d = g[i] + weightDecay * p[i];
    if (momentum !== 0) {
      if (!buf) throw new Error('sgd: momentum is not 0 but no momentum buffer was given');
      d = buf[i] = momentum * buf[i] + d;
    }
    p[i] -= lr * d;
  }
}

/** Elements per chunk of sumsq (shared with assembly/optim.ts). */
export const SUMSQ_CHUNK = 65536;

/** out[c] = sum of x[i]^2 over chunk c = [c SUMSQ_CHUNK, (c + 1) SUMSQ_CHUNK) ∩ [0, n). */
export function sumsq(x: F, n: number, out: Float64Array): void {
  const chunks = Math.ceil(n / SUMSQ_CHUNK);
  for (let c = 0; c < chunks; c++) {
    let s = 0;
    for (let i = c * SUMSQ_CHUNK; i < Math.min(n, (c + 1) * SUMSQ_CHUNK); i++) s += x[i] * x[i];
    out[c] = s;
  }
}
