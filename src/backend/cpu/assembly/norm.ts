// LayerNorm and RMSNorm over the last axis of [N, D]: forward and dx (work unit: rows), weight
// gradients (work unit: columns, so that each thread owns its part of dw/db). A 0 pointer is an
// absent weight, bias, or saved statistic.
import { madd, splat } from './math';
import { hsum4, loadPartial, storePartial, sumRow, dotRow, zeroRow, addRow } from './vec';

@inline function ld(p: usize, j: i32, k: i32, fill: f32): v128 {
  return k == 4 ? v128.load(p + (<usize>j << 2)) : loadPartial(p + (<usize>j << 2), k, fill);
}

@inline function st(p: usize, j: i32, v: v128, k: i32): void {
  if (k == 4) v128.store(p + (<usize>j << 2), v); else storePartial(p + (<usize>j << 2), v, k);
}

/** sum (x - m)^2 over n floats. */
function sumSqDev(p: usize, n: i32, m: f32): f32 {
  const vm = splat(m);
  let a0 = splat(0), a1 = a0;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const d0 = f32x4.sub(v128.load(p + (<usize>j << 2)), vm), d1 = f32x4.sub(v128.load(p + (<usize>j << 2) + 16), vm);
    a0 = madd(d0, d0, a0);
    a1 = madd(d1, d1, a1);
  }
  for (; j < n; j += 4) {
    const k = min(4, n - j);
    const d = f32x4.sub(ld(p, j, k, m), vm); // padding lanes hold m: they add 0
    a0 = madd(d, d, a0);
  }
  const s = f32x4.add(a0, a1);
  return hsum4(s);
}

// Row loops run whole vectors with k = 4 (the inlined helpers then fold their tail branches)
// and one partial vector of k = D % 4 at the end.

/** g = dy w (w = 0: dy) at j, k lanes. */
@inline function gAt(pd: usize, w: usize, j: i32, k: i32): v128 {
  const d = ld(pd, j, k, 0);
  return w ? f32x4.mul(d, ld(w, j, k, 0)) : d;
}

/** xhat = (x - mean) rstd at j, k lanes. */
@inline function xhatAt(px: usize, vm: v128, vr: v128, j: i32, k: i32): v128 {
  return f32x4.mul(f32x4.sub(ld(px, j, k, 0), vm), vr);
}

@inline function layernormStep(px: usize, po: usize, w: usize, b: usize, vm: v128, vr: v128, j: i32, k: i32): void {
  let y = xhatAt(px, vm, vr, j, k);
  if (w) y = f32x4.mul(y, ld(w, j, k, 0));
  if (b) y = f32x4.add(y, ld(b, j, k, 0));
  st(po, j, y, k);
}

/** out = (x - mean) rstd w + b; mean, rstd [N] saved when non-zero. eps in float64. */
export function layernorm(x: usize, w: usize, b: usize, out: usize, mean: usize, rstd: usize, N: i32, D: i32, eps: f64,
  start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const px = x + off, po = out + off;
    const mu = sumRow(px, D) / <f32>D;
    const rs = <f32>(1.0 / Math.sqrt(<f64>sumSqDev(px, D, mu) / <f64>D + eps));
    if (mean) store<f32>(mean + (<usize>r << 2), mu);
    if (rstd) store<f32>(rstd + (<usize>r << 2), rs);
    const vm = splat(mu), vr = splat(rs);
    let j = 0;
    for (; j + 4 <= D; j += 4) layernormStep(px, po, w, b, vm, vr, j, 4);
    if (j < D) layernormStep(px, po, w, b, vm, vr, j, D - j);
  }
  return 0;
}

@inline function layernormGradStep(px: usize, pd: usize, po: usize, w: usize, vm: v128, vr: v128, a: v128, c: v128, j: i32, k: i32): void {
  const g = gAt(pd, w, j, k), xh = xhatAt(px, vm, vr, j, k);
  st(po, j, f32x4.mul(vr, f32x4.sub(f32x4.sub(g, a), f32x4.mul(xh, c))), k);
}

/** dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w, xhat = (x - mean) rstd. */
export function layernorm_grad(x: usize, w: usize, mean: usize, rstd: usize, dy: usize, dx: usize, N: i32, D: i32,
  start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const px = x + off, pd = dy + off, po = dx + off;
    const vm = splat(load<f32>(mean + (<usize>r << 2))), vr = splat(load<f32>(rstd + (<usize>r << 2)));
    let sg = splat(0), sgx = splat(0);
    let j = 0;
    for (; j + 4 <= D; j += 4) {
      const g = gAt(pd, w, j, 4);
      sg = f32x4.add(sg, g);
      sgx = madd(g, xhatAt(px, vm, vr, j, 4), sgx);
    }
    if (j < D) {
      const g = gAt(pd, w, j, D - j); // padding lanes are 0
      sg = f32x4.add(sg, g);
      sgx = madd(g, xhatAt(px, vm, vr, j, D - j), sgx);
    }
    const a = splat(hsum4(sg) / <f32>D);
    const c = splat(hsum4(sgx) / <f32>D);
    j = 0;
    for (; j + 4 <= D; j += 4) layernormGradStep(px, pd, po, w, vm, vr, a, c, j, 4);
    if (j < D) layernormGradStep(px, pd, po, w, vm, vr, a, c, j, D - j);
  }
  return 0;
}

/** Rows per block of the column sums: partial sums of this many rows are added to the output. */
const BLOCK_ROWS = 32;
/** Columns per pass of the column kernels (partials in scratch: 2 x 8 KiB). */
const CHUNK_COLS = 2048;

/**
 * dw[c] = sum_r xhat[r, c] dy[r, c] and db[c] = sum_r dy[r, c] for columns [start, end)
 * (written, not accumulated; dw or db may be 0). rms = 1: xhat = x rstd (rmsnorm, mean unused).
 */
@inline function normWgrad(rms: bool, x: usize, mean: usize, rstd: usize, dy: usize, dw: usize, db: usize, N: i32, D: i32,
  start: i32, end: i32, scratch: usize): void {
  const pw = scratch, pb = scratch + (<usize>CHUNK_COLS << 2);
  for (let c0 = start; c0 < end; c0 += CHUNK_COLS) {
    const nc = min(CHUNK_COLS, end - c0);
    const cb = <usize>c0 << 2;
    if (dw) zeroRow(dw + cb, nc);
    if (db) zeroRow(db + cb, nc);
    for (let r0 = 0; r0 < N; r0 += BLOCK_ROWS) {
      zeroRow(pw, nc);
      zeroRow(pb, nc);
      const r1 = min(N, r0 + BLOCK_ROWS);
      for (let r = r0; r < r1; r++) {
        const off = ((<usize>r * <usize>D) << 2) + cb;
        const px = x + off, pd = dy + off;
        const vm = splat(rms ? 0 : load<f32>(mean + (<usize>r << 2))), vr = splat(load<f32>(rstd + (<usize>r << 2)));
        let j = 0;
        for (; j + 4 <= nc; j += 4) {
          const o = <usize>j << 2;
          const d = v128.load(pd + o);
          const xh = f32x4.mul(rms ? v128.load(px + o) : f32x4.sub(v128.load(px + o), vm), vr);
          if (dw) v128.store(pw + o, madd(xh, d, v128.load(pw + o)));
          if (db) v128.store(pb + o, f32x4.add(v128.load(pb + o), d));
        }
        for (; j < nc; j++) {
          const o = <usize>j << 2;
          const d = load<f32>(pd + o);
          const xh = (load<f32>(px + o) - f32x4.extract_lane(vm, 0)) * f32x4.extract_lane(vr, 0);
          if (dw) store<f32>(pw + o, load<f32>(pw + o) + xh * d);
          if (db) store<f32>(pb + o, load<f32>(pb + o) + d);
        }
      }
      if (dw) addRow(dw + cb, pw, nc);
      if (db) addRow(db + cb, pb, nc);
    }
  }
}

/** dw = sum_r xhat dy, db = sum_r dy over columns [start, end). */
export function layernorm_wgrad(x: usize, mean: usize, rstd: usize, dy: usize, dw: usize, db: usize, N: i32, D: i32,
  start: i32, end: i32, scratch: usize): i32 {
  normWgrad(false, x, mean, rstd, dy, dw, db, N, D, start, end, scratch);
  return 0;
}

/** g = dy (offset + w) (w = 0: dy) at j, k lanes. */
@inline function gOffAt(pd: usize, w: usize, voff: v128, j: i32, k: i32): v128 {
  const d = ld(pd, j, k, 0);
  return w ? f32x4.mul(d, f32x4.add(voff, ld(w, j, k, 0))) : d;
}

@inline function rmsnormStep(px: usize, po: usize, w: usize, voff: v128, vr: v128, j: i32, k: i32): void {
  const y = f32x4.mul(ld(px, j, k, 0), vr);
  st(po, j, w ? f32x4.mul(y, f32x4.add(voff, ld(w, j, k, 0))) : y, k);
}

/** out = x rstd (offset + w) (w = 0: out = x rstd), rstd = 1 / sqrt(mean(x^2) + eps). */
export function rmsnorm(x: usize, w: usize, out: usize, rstd: usize, N: i32, D: i32, eps: f64, offset: f32,
  start: i32, end: i32, scratch: usize): i32 {
  const voff = splat(offset);
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const px = x + off, po = out + off;
    const rs = <f32>(1.0 / Math.sqrt(<f64>dotRow(px, px, D) / <f64>D + eps));
    if (rstd) store<f32>(rstd + (<usize>r << 2), rs);
    const vr = splat(rs);
    let j = 0;
    for (; j + 4 <= D; j += 4) rmsnormStep(px, po, w, voff, vr, j, 4);
    if (j < D) rmsnormStep(px, po, w, voff, vr, j, D - j);
  }
  return 0;
}

@inline function rmsnormGradStep(px: usize, pd: usize, po: usize, w: usize, voff: v128, vr: v128, vc: v128, j: i32, k: i32): void {
  st(po, j, f32x4.sub(f32x4.mul(vr, gOffAt(pd, w, voff, j, k)), f32x4.mul(vc, ld(px, j, k, 0))), k);
}

/** dx = rstd g - x rstd^3 sum(g x) / D, g = dy (offset + w). */
export function rmsnorm_grad(x: usize, w: usize, rstd: usize, dy: usize, dx: usize, N: i32, D: i32, offset: f32,
  start: i32, end: i32, scratch: usize): i32 {
  const voff = splat(offset);
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const px = x + off, pd = dy + off, po = dx + off;
    const rs = load<f32>(rstd + (<usize>r << 2));
    let sgx = splat(0);
    let j = 0;
    for (; j + 4 <= D; j += 4) sgx = madd(gOffAt(pd, w, voff, j, 4), ld(px, j, 4, 0), sgx);
    if (j < D) sgx = madd(gOffAt(pd, w, voff, j, D - j), ld(px, j, D - j, 0), sgx);
    const vc = splat(rs * rs * rs * hsum4(sgx) / <f32>D), vr = splat(rs);
    j = 0;
    for (; j + 4 <= D; j += 4) rmsnormGradStep(px, pd, po, w, voff, vr, vc, j, 4);
    if (j < D) rmsnormGradStep(px, pd, po, w, voff, vr, vc, j, D - j);
  }
  return 0;
}

/** dw = sum_r x rstd dy over columns [start, end) (written). */
export function rmsnorm_wgrad(x: usize, rstd: usize, dy: usize, dw: usize, N: i32, D: i32, start: i32, end: i32, scratch: usize): i32 {
  normWgrad(true, x, 0, rstd, dy, dw, 0, N, D, start, end, scratch);
  return 0;
}
