// LayerNorm and RMSNorm over the last axis of [N, D], with input and weight gradients
// (reference kernels). Absent weights or biases are null (0 pointers in the WebAssembly kernels).
import type { F } from './types.js';

/**
 * out = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps) with the biased variance
 * (torch.nn.LayerNorm). x, out [N, D]; w, b [D] or null; mean, rstd [N] (saved for backward, or null).
 */
export function layernorm(
  x: F,
  w: F | null,
  b: F | null,
  out: F,
  mean: F | null,
  rstd: F | null,
  N: number,
  D: number,
  eps: number,
): void {
  for (let r = 0; r < N; r++) {
    let mu = 0;
    for (let j = 0; j < D; j++) mu += x[r * D + j];
    mu /= D;
    let v = 0;
    for (let j = 0; j < D; j++) v += (x[r * D + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / D + eps);
    for (let j = 0; j < D; j++) {
      const xhat = (x[r * D + j] - mu) * rs;
      out[r * D + j] = xhat * (w ? w[j] : 1) + (b ? b[j] : 0);
    }
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
  }
}

/**
 * dx of layernorm: with xhat = (x - mean) rstd and g = dy w,
 * dx = rstd (g - mean(g) - xhat mean(g xhat)).
 */
export function layernormGrad(x: F, w: F | null, mean: F, rstd: F, dy: F, dx: F, N: number, D: number): void {
  for (let r = 0; r < N; r++) {
    let sg = 0,
      sgx = 0;
    for (let j = 0; j < D; j++) {
      const g = dy[r * D + j] * (w ? w[j] : 1),
        xhat = (x[r * D + j] - mean[r]) * rstd[r];
      sg += g;
      sgx += g * xhat;
    }
    sg /= D;
    sgx /= D;
    for (let j = 0; j < D; j++) {
      const g = dy[r * D + j] * (w ? w[j] : 1),
        xhat = (x[r * D + j] - mean[r]) * rstd[r];
      dx[r * D + j] = rstd[r] * (g - sg - xhat * sgx);
    }
  }
}

/** dw = sum_r xhat dy, db = sum_r dy (written, not accumulated); either may be null. */
export function layernormWgrad(x: F, mean: F, rstd: F, dy: F, dw: F | null, db: F | null, N: number, D: number): void {
  for (let j = 0; j < D; j++) {
    let sw = 0,
      sb = 0;
    for (let r = 0; r < N; r++) {
      sw += (x[r * D + j] - mean[r]) * rstd[r] * dy[r * D + j];
      sb += dy[r * D + j];
    }
    if (dw) dw[j] = sw;
    if (db) db[j] = sb;
  }
}

/**
 * out = x rstd (offset + w), rstd = 1 / sqrt(mean(x^2) + eps); offset 1 gives Gemma's (1 + w).
 * w null means a weight of 1 (out = x rstd). rstd [N] or null.
 */
export function rmsnorm(
  x: F,
  w: F | null,
  out: F,
  rstd: F | null,
  N: number,
  D: number,
  eps: number,
  offset: number,
): void {
  for (let r = 0; r < N; r++) {
    let ss = 0;
    for (let j = 0; j < D; j++) ss += x[r * D + j] ** 2;
    const rs = 1 / Math.sqrt(ss / D + eps);
    for (let j = 0; j < D; j++) out[r * D + j] = x[r * D + j] * rs * (w ? offset + w[j] : 1);
    if (rstd) rstd[r] = rs;
  }
}

/** dx of rmsnorm: with xhat = x rstd and g = dy (offset + w), dx = rstd (g - xhat mean(g xhat)). */
export function rmsnormGrad(x: F, w: F | null, rstd: F, dy: F, dx: F, N: number, D: number, offset: number): void {
  for (let r = 0; r < N; r++) {
    let sgx = 0;
    for (let j = 0; j < D; j++) sgx += dy[r * D + j] * (w ? offset + w[j] : 1) * x[r * D + j] * rstd[r];
    sgx /= D;
    for (let j = 0; j < D; j++) {
      const g = dy[r * D + j] * (w ? offset + w[j] : 1);
      dx[r * D + j] = rstd[r] * (g - x[r * D + j] * rstd[r] * sgx);
    }
  }
}

/** dw = sum_r x rstd dy (written, not accumulated; the same for offset 0 and 1). */
export function rmsnormWgrad(x: F, rstd: F, dy: F, dw: F, N: number, D: number): void {
  for (let j = 0; j < D; j++) {
    let s = 0;
    for (let r = 0; r < N; r++) s += x[r * D + j] * rstd[r] * dy[r * D + j];
    dw[j] = s;
  }
}
