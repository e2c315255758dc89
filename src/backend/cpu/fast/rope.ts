// Wrapper of assembly/rope.ts (work unit: (b, t) positions).
import type { KernelRuntime } from '../runtime.js';
import { runRows } from './split.js';

/**
 * x, out [B, T, H, Dh] (out may be x); cos, sin [B, T, R/2]; sign +1 forward, -1 backward
 * (the transpose rotation).
 */
export function rope(
  rt: KernelRuntime,
  x: number,
  cos: number,
  sin: number,
  out: number,
  B: number,
  T: number,
  H: number,
  Dh: number,
  R: number,
  sign: 1 | -1,
): void {
  if (R % 2 !== 0 || R > Dh) throw new Error(`rope: rotary dims R = ${R} must be even and <= head size Dh = ${Dh}`);
  runRows(rt, 'rope', [x, cos, sin, out, B, T, H, Dh, R, sign], B * T, H * Dh, 2);
}
