// Rotary position embedding in transformers' rotate-half convention (reference kernel).
import type { F } from './types.js';

/**
 * x, out [B, T, H, Dh]; cos, sin [B, T, R/2]. In each head the first R dims rotate:
 *   o[i]       = x[i] cos[i] - s x[i + R/2] sin[i]
 *   o[i + R/2] = x[i + R/2] cos[i] + s x[i] sin[i]      (i < R/2, s = sign)
 * and dims >= R are copied. sign -1 applies the transpose (inverse) rotation: the backward.
 * out may be x (in place).
 */
export function rope(
  x: F,
  cos: F,
  sin: F,
  out: F,
  B: number,
  T: number,
  H: number,
  Dh: number,
  R: number,
  sign: number,
): void {
  if (R % 2 !== 0 || R > Dh) throw new Error(`rope: rotary dims R = ${R} must be even and <= head size ${Dh}`);
  const half = R / 2;
  for (let bt = 0; bt < B * T; bt++) {
    for (let h = 0; h < H; h++) {
      const base = (bt * H + h) * Dh;
      for (let i = 0; i < half; i++) {
        const c = cos[bt * half + i],
          s = sign * sin[bt * half + i];
        const x1 = x[base + i],
          x2 = x[base + i + half];
        out[base + i] = x1 * c - x2 * s;
        out[base + i + half] = x2 * c + x1 * s;
      }
      for (let i = R; i < Dh; i++) out[base + i] = x[base + i];
    }
  }
}
