// Fused self-attention (fast kernels, f32 SIMD): forward (out, lse) and backward by recomputation,
// with grouped-query heads, causal / sliding-window / key-padding masks and soft-capping.
// Semantics: docs/kernels.md (`attention`, `attention_grad`); reference: src/backend/ref/attention.ts.
//
// Each work unit (forward: one (b, h); backward: one (b, kv head g) and its H / Hkv query heads)
// walks its queries in blocks of up to QBLOCK rows. A block at positions p0 .. p0 + rows - 1
// (p = i + S - T) sees keys [jlo, jhi): jhi = p_last + 1 when causal, jlo = p0 - window + 1 with
// a window; so causal attention never touches the keys above the diagonal. The block's scores
// [rows x nk] sit in a tile in the thread's scratch (row stride ldt = nk rounded up to 4):
//
//   scratch = keep [S + 8] (i32 lane masks: -1 keep, 0 padded or past S) | rowStat [QBLOCK] | tile [tq x ldt] (| tile2)
//
// The backward holds two tiles (P and dS); the number of rows per block shrinks for long S so that
// they fit the 4 MiB scratch (one row of each at least: S up to about 349k keys).
//
// Three matrix shapes do the work, each register-blocked for 128-bit SIMD:
//   attnScoreTile  C = alpha A B^T (rows of A and B are contiguous head vectors): Q K^T, dO V^T
//   attnRowsTimes  O = P X          (axpy over rows of X):                      P V, dS K
//   attnTransTimes O += P^T X       (axpy over rows of X):                      P^T dO, dS^T Q
// All three take `dg`, the causal diagonal of the tile: row r sees columns c <= r + dg (dg >= nk
// when not causal), and skip what lies beyond it. Tile entries they skip hold garbage until the
// row pass (attnForwardRow / attnBackwardRow) writes every entry of [0, nk): masked ones as 0.

import { madd, exp4, tanh4 } from './math';

/** Scratch per thread, in floats (runtime.ts SCRATCH_BYTES = 4 MiB). */
const SCRATCH_FLOATS: i32 = (4 << 20) >> 2;
/** Queries per block: big enough to reuse each K/V row often, small enough to keep tiles in L2. */
const QBLOCK: i32 = 64;
const NEG_INF: f32 = -Infinity;

// ---- SIMD helpers (private to this file; exp, tanh and fma are math.ts's, as in the other kernels) ----

/** [sum(a), sum(b), sum(c), sum(d)]: lane sums (x0 + x2) + (x1 + x3) of four vectors. */
// @ts-ignore: decorator
@inline function attnHsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(f32x4.shuffle(a, b, 0, 4, 1, 5), f32x4.shuffle(a, b, 2, 6, 3, 7)); // [a0+a2, b0+b2, a1+a3, b1+b3]
  const cd = f32x4.add(f32x4.shuffle(c, d, 0, 4, 1, 5), f32x4.shuffle(c, d, 2, 6, 3, 7));
  return f32x4.add(f32x4.shuffle(ab, cd, 0, 1, 4, 5), f32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** Sum of the lanes, in the same order as attnHsum4. */
// @ts-ignore: decorator
@inline function attnHsum(a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 2)) + (f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 3));
}

// @ts-ignore: decorator
@inline function attnHmax(a: v128): f32 {
  const m = f32x4.pmax(a, f32x4.shuffle(a, a, 2, 3, 0, 1));
  return max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
}

/** Dot product of n floats at a and b. */
function attnDot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= n; d += 4) acc = madd(v128.load(a + (<usize>d << 2)), v128.load(b + (<usize>d << 2)), acc);
  let s = attnHsum(acc);
  for (; d < n; d++) s += load<f32>(a + (<usize>d << 2)) * load<f32>(b + (<usize>d << 2));
  return s;
}

/** Scalar tails (d in [d0, n)) of the four dots of a with b0..b3, as a vector. */
function attnTail4(a: usize, b0: usize, b1: usize, b2: usize, b3: usize, d0: i32, n: i32): v128 {
  let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
  for (let d = d0; d < n; d++) {
    const o = <usize>d << 2, x = load<f32>(a + o);
    s0 += x * load<f32>(b0 + o);
    s1 += x * load<f32>(b1 + o);
    s2 += x * load<f32>(b2 + o);
    s3 += x * load<f32>(b3 + o);
  }
  return f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(s0), 1, s1), 2, s2), 3, s3);
}

// ---- the three block products ----

/**
 * C[r, c] = alpha A[r] . B[c] for r < rows and c < min(cols, r + dg + 1) (possibly a few more):
 * A [rows, n] at row stride lda, B [cols, n] at stride ldb, C at stride ldc (strides in floats).
 * Register block: 2 rows x 4 columns, 8 accumulators reduced by attnHsum4.
 */
function attnScoreTile(
  a: usize, lda: i32, rows: i32, b: usize, ldb: i32, cols: i32, dg: i32, n: i32,
  c: usize, ldc: i32, alpha: f32,
): void {
  const n4 = n & ~3, va = f32x4.splat(alpha), sb = <usize>ldb << 2;
  let r = 0;
  for (; r + 2 <= rows; r += 2) {
    const a0 = a + (<usize>(r * lda) << 2), a1 = a0 + (<usize>lda << 2);
    const c0 = c + (<usize>(r * ldc) << 2), c1 = c0 + (<usize>ldc << 2);
    const lim = min(cols, r + dg + 2);
    let j = 0;
    for (; j + 4 <= lim; j += 4) {
      const b0 = b + (<usize>(j * ldb) << 2), b1 = b0 + sb, b2 = b1 + sb, b3 = b2 + sb;
      let s00 = f32x4.splat(0), s01 = s00, s02 = s00, s03 = s00;
      let s10 = s00, s11 = s00, s12 = s00, s13 = s00;
      for (let d = 0; d < n4; d += 4) {
        const o = <usize>d << 2;
        const x0 = v128.load(a0 + o), x1 = v128.load(a1 + o);
        let y = v128.load(b0 + o);
        s00 = madd(x0, y, s00); s10 = madd(x1, y, s10);
        y = v128.load(b1 + o);
        s01 = madd(x0, y, s01); s11 = madd(x1, y, s11);
        y = v128.load(b2 + o);
        s02 = madd(x0, y, s02); s12 = madd(x1, y, s12);
        y = v128.load(b3 + o);
        s03 = madd(x0, y, s03); s13 = madd(x1, y, s13);
      }
      let r0 = attnHsum4(s00, s01, s02, s03), r1 = attnHsum4(s10, s11, s12, s13);
      if (n4 < n) {
        r0 = f32x4.add(r0, attnTail4(a0, b0, b1, b2, b3, n4, n));
        r1 = f32x4.add(r1, attnTail4(a1, b0, b1, b2, b3, n4, n));
      }
      v128.store(c0 + (<usize>j << 2), f32x4.mul(r0, va));
      v128.store(c1 + (<usize>j << 2), f32x4.mul(r1, va));
    }
    for (; j < lim; j++) {
      const bj = b + (<usize>(j * ldb) << 2);
      store<f32>(c0 + (<usize>j << 2), alpha * attnDot(a0, bj, n));
      store<f32>(c1 + (<usize>j << 2), alpha * attnDot(a1, bj, n));
    }
  }
  if (r < rows) {
    const a0 = a + (<usize>(r * lda) << 2), c0 = c + (<usize>(r * ldc) << 2);
    const lim = min(cols, r + dg + 1);
    for (let j = 0; j < lim; j++) store<f32>(c0 + (<usize>j << 2), alpha * attnDot(a0, b + (<usize>(j * ldb) << 2), n));
  }
}

/**
 * O[r, :n] = sum_{c < min(cols, r + dg + 1)} P[r, c] X[c, :n] (written, not accumulated):
 * P [rows, cols] at stride ldp, X rows at stride ldx, O rows at stride ldo. Tile entries of a row
 * past its own diagonal but inside its 4-row group are read, so they must be 0.
 * Register block: 4 rows x 8 floats of the head dimension.
 */
function attnRowsTimes(
  p: usize, ldp: i32, rows: i32, cols: i32, dg: i32, x: usize, ldx: i32, n: i32, o: usize, ldo: i32,
): void {
  const sx = <usize>ldx << 2;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const p0 = p + (<usize>(r * ldp) << 2), p1 = p0 + (<usize>ldp << 2), p2 = p1 + (<usize>ldp << 2), p3 = p2 + (<usize>ldp << 2);
    const o0 = o + (<usize>(r * ldo) << 2), o1 = o0 + (<usize>ldo << 2), o2 = o1 + (<usize>ldo << 2), o3 = o2 + (<usize>ldo << 2);
    const lim = min(cols, r + dg + 4);
    let d = 0;
    for (; d + 8 <= n; d += 8) {
      let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      let xp = x + (<usize>d << 2);
      for (let c = 0; c < lim; c++) {
        const x0 = v128.load(xp), x1 = v128.load(xp, 16), pc = <usize>c << 2;
        let w = v128.load32_splat(p0 + pc);
        a00 = madd(w, x0, a00); a01 = madd(w, x1, a01);
        w = v128.load32_splat(p1 + pc);
        a10 = madd(w, x0, a10); a11 = madd(w, x1, a11);
        w = v128.load32_splat(p2 + pc);
        a20 = madd(w, x0, a20); a21 = madd(w, x1, a21);
        w = v128.load32_splat(p3 + pc);
        a30 = madd(w, x0, a30); a31 = madd(w, x1, a31);
        xp += sx;
      }
      const od = <usize>d << 2;
      v128.store(o0 + od, a00); v128.store(o0 + od, a01, 16);
      v128.store(o1 + od, a10); v128.store(o1 + od, a11, 16);
      v128.store(o2 + od, a20); v128.store(o2 + od, a21, 16);
      v128.store(o3 + od, a30); v128.store(o3 + od, a31, 16);
    }
    for (; d + 4 <= n; d += 4) {
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      let xp = x + (<usize>d << 2);
      for (let c = 0; c < lim; c++) {
        const x0 = v128.load(xp), pc = <usize>c << 2;
        a0 = madd(v128.load32_splat(p0 + pc), x0, a0);
        a1 = madd(v128.load32_splat(p1 + pc), x0, a1);
        a2 = madd(v128.load32_splat(p2 + pc), x0, a2);
        a3 = madd(v128.load32_splat(p3 + pc), x0, a3);
        xp += sx;
      }
      const od = <usize>d << 2;
      v128.store(o0 + od, a0); v128.store(o1 + od, a1); v128.store(o2 + od, a2); v128.store(o3 + od, a3);
    }
    for (; d < n; d++) {
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
      let xp = x + (<usize>d << 2);
      for (let c = 0; c < lim; c++) {
        const xv = load<f32>(xp), pc = <usize>c << 2;
        s0 += load<f32>(p0 + pc) * xv; s1 += load<f32>(p1 + pc) * xv;
        s2 += load<f32>(p2 + pc) * xv; s3 += load<f32>(p3 + pc) * xv;
        xp += sx;
      }
      const od = <usize>d << 2;
      store<f32>(o0 + od, s0); store<f32>(o1 + od, s1); store<f32>(o2 + od, s2); store<f32>(o3 + od, s3);
    }
  }
  for (; r < rows; r++) {
    const p0 = p + (<usize>(r * ldp) << 2), o0 = o + (<usize>(r * ldo) << 2);
    const lim = min(cols, r + dg + 1);
    let d = 0;
    for (; d + 4 <= n; d += 4) {
      let a0 = f32x4.splat(0);
      let xp = x + (<usize>d << 2);
      for (let c = 0; c < lim; c++) {
        a0 = madd(v128.load32_splat(p0 + (<usize>c << 2)), v128.load(xp), a0);
        xp += sx;
      }
      v128.store(o0 + (<usize>d << 2), a0);
    }
    for (; d < n; d++) {
      let s0: f32 = 0;
      let xp = x + (<usize>d << 2);
      for (let c = 0; c < lim; c++) {
        s0 += load<f32>(p0 + (<usize>c << 2)) * load<f32>(xp);
        xp += sx;
      }
      store<f32>(o0 + (<usize>d << 2), s0);
    }
  }
}

/**
 * O[c, :n] += sum_{r in [max(0, c - dg), rows)} P[r, c] X[r, :n] for c < cols: P [rows, cols] at
 * stride ldp, X rows at stride ldx, O rows at stride ldo. Entries above the diagonal inside a
 * 4-column group are read, so they must be 0. Register block: 4 columns x 8 floats.
 */
function attnTransTimes(
  p: usize, ldp: i32, rows: i32, cols: i32, dg: i32, x: usize, ldx: i32, n: i32, o: usize, ldo: i32,
): void {
  const sx = <usize>ldx << 2, sp = <usize>ldp << 2, so = <usize>ldo << 2;
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const r0 = max(0, c - dg);
    const o0 = o + (<usize>(c * ldo) << 2), o1 = o0 + so, o2 = o1 + so, o3 = o2 + so;
    const pStart = p + (<usize>(r0 * ldp + c) << 2);
    let d = 0;
    for (; d + 8 <= n; d += 8) {
      const od = <usize>d << 2;
      let a00 = v128.load(o0 + od), a01 = v128.load(o0 + od, 16);
      let a10 = v128.load(o1 + od), a11 = v128.load(o1 + od, 16);
      let a20 = v128.load(o2 + od), a21 = v128.load(o2 + od, 16);
      let a30 = v128.load(o3 + od), a31 = v128.load(o3 + od, 16);
      let xp = x + (<usize>(r0 * ldx + d) << 2), pp = pStart;
      for (let r = r0; r < rows; r++) {
        const x0 = v128.load(xp), x1 = v128.load(xp, 16);
        let w = v128.load32_splat(pp);
        a00 = madd(w, x0, a00); a01 = madd(w, x1, a01);
        w = v128.load32_splat(pp, 4);
        a10 = madd(w, x0, a10); a11 = madd(w, x1, a11);
        w = v128.load32_splat(pp, 8);
        a20 = madd(w, x0, a20); a21 = madd(w, x1, a21);
        w = v128.load32_splat(pp, 12);
        a30 = madd(w, x0, a30); a31 = madd(w, x1, a31);
        xp += sx; pp += sp;
      }
      v128.store(o0 + od, a00); v128.store(o0 + od, a01, 16);
      v128.store(o1 + od, a10); v128.store(o1 + od, a11, 16);
      v128.store(o2 + od, a20); v128.store(o2 + od, a21, 16);
      v128.store(o3 + od, a30); v128.store(o3 + od, a31, 16);
    }
    for (; d + 4 <= n; d += 4) {
      const od = <usize>d << 2;
      let a0 = v128.load(o0 + od), a1 = v128.load(o1 + od), a2 = v128.load(o2 + od), a3 = v128.load(o3 + od);
      let xp = x + (<usize>(r0 * ldx + d) << 2), pp = pStart;
      for (let r = r0; r < rows; r++) {
        const x0 = v128.load(xp);
        a0 = madd(v128.load32_splat(pp), x0, a0);
        a1 = madd(v128.load32_splat(pp, 4), x0, a1);
        a2 = madd(v128.load32_splat(pp, 8), x0, a2);
        a3 = madd(v128.load32_splat(pp, 12), x0, a3);
        xp += sx; pp += sp;
      }
      v128.store(o0 + od, a0); v128.store(o1 + od, a1); v128.store(o2 + od, a2); v128.store(o3 + od, a3);
    }
    for (; d < n; d++) {
      const od = <usize>d << 2;
      let s0 = load<f32>(o0 + od), s1 = load<f32>(o1 + od), s2 = load<f32>(o2 + od), s3 = load<f32>(o3 + od);
      let xp = x + (<usize>(r0 * ldx + d) << 2), pp = pStart;
      for (let r = r0; r < rows; r++) {
        const xv = load<f32>(xp);
        s0 += load<f32>(pp) * xv; s1 += load<f32>(pp, 4) * xv;
        s2 += load<f32>(pp, 8) * xv; s3 += load<f32>(pp, 12) * xv;
        xp += sx; pp += sp;
      }
      store<f32>(o0 + od, s0); store<f32>(o1 + od, s1); store<f32>(o2 + od, s2); store<f32>(o3 + od, s3);
    }
  }
  for (; c < cols; c++) {
    const r0 = max(0, c - dg);
    const o0 = o + (<usize>(c * ldo) << 2), pStart = p + (<usize>(r0 * ldp + c) << 2);
    let d = 0;
    for (; d + 4 <= n; d += 4) {
      const od = <usize>d << 2;
      let a0 = v128.load(o0 + od);
      let xp = x + (<usize>(r0 * ldx + d) << 2), pp = pStart;
      for (let r = r0; r < rows; r++) {
        a0 = madd(v128.load32_splat(pp), v128.load(xp), a0);
        xp += sx; pp += sp;
      }
      v128.store(o0 + od, a0);
    }
    for (; d < n; d++) {
      const od = <usize>d << 2;
      let s0 = load<f32>(o0 + od);
      let xp = x + (<usize>(r0 * ldx + d) << 2), pp = pStart;
      for (let r = r0; r < rows; r++) {
        s0 += load<f32>(pp) * load<f32>(xp);
        xp += sx; pp += sp;
      }
      store<f32>(o0 + od, s0);
    }
  }
}

// ---- row passes over a score tile ----

/** 1 / (sum of e^(s - max)) of the last attnForwardRow (0 for a row without keys). */
let attnRowInv: f32 = 0;

/** Zeroes floats [from, to) of a row. */
function attnZero(row: usize, from: i32, to: i32): void {
  for (let j = from; j < to; j++) store<f32>(row + (<usize>j << 2), 0);
}

/**
 * Turns one row of raw scores (already times scale) into unnormalised probabilities e^(s - max)
 * in place: soft-capping, then keys outside [lo, hi) or padded (keep lane 0) become 0. Returns
 * the row's logsumexp (-inf without keys) and leaves 1 / sum in attnRowInv. Entries [0, nk) are
 * all written; the vector loop may run up to the row stride (nk rounded up to 4).
 */
function attnForwardRow(row: usize, nk: i32, lo: i32, hi: i32, keep: usize, softcap: f32): f32 {
  const ldt = (nk + 3) & ~3;
  if (hi <= lo) {
    attnZero(row, 0, nk);
    attnRowInv = 0;
    return NEG_INF;
  }
  const j0 = lo & ~3, j1 = min((hi + 3) & ~3, ldt);
  attnZero(row, 0, j0);
  attnZero(row, j1, nk);
  const loV = i32x4.splat(lo - 1), hiV = i32x4.splat(hi), iota = i32x4(0, 1, 2, 3);
  const cV = f32x4.splat(softcap), invC = f32x4.splat(softcap > 0 ? 1 / softcap : 0);
  let vmax = f32x4.splat(NEG_INF);
  for (let j = j0; j < j1; j += 4) {
    const at = row + (<usize>j << 2);
    let s = v128.load(at);
    if (softcap > 0) s = f32x4.mul(cV, tanh4(f32x4.mul(s, invC)));
    const idx = i32x4.add(i32x4.splat(j), iota);
    const ok = v128.and(v128.and(i32x4.gt_s(idx, loV), i32x4.gt_s(hiV, idx)), v128.load(keep + (<usize>j << 2)));
    s = v128.bitselect(s, f32x4.splat(NEG_INF), ok);
    v128.store(at, s);
    vmax = f32x4.pmax(vmax, s);
  }
  const m = attnHmax(vmax);
  if (m == NEG_INF) {
    attnZero(row, j0, nk);
    attnRowInv = 0;
    return NEG_INF;
  }
  const mV = f32x4.splat(m);
  let vsum = f32x4.splat(0);
  for (let j = j0; j < j1; j += 4) {
    const at = row + (<usize>j << 2);
    const e = exp4(f32x4.sub(v128.load(at), mV));
    v128.store(at, e);
    vsum = f32x4.add(vsum, e);
  }
  const sum = attnHsum(vsum);
  attnRowInv = 1 / sum;
  return m + Mathf.log(sum);
}

/**
 * Backward row pass: from raw scores s (times scale) in `prow` and dP = dO . V in `dsrow`, writes
 * P = e^(capped s - lse) into prow and scale * dS into dsrow, dS = P (dP - D) (times the
 * soft-cap derivative 1 - tanh^2). Masked entries of [0, nk) become 0 in both rows.
 */
function attnBackwardRow(
  prow: usize, dsrow: usize, nk: i32, lo: i32, hi: i32, keep: usize, softcap: f32, lse: f32, D: f32, scale: f32,
): void {
  const ldt = (nk + 3) & ~3;
  if (hi <= lo || lse == NEG_INF) {
    attnZero(prow, 0, nk);
    attnZero(dsrow, 0, nk);
    return;
  }
  const j0 = lo & ~3, j1 = min((hi + 3) & ~3, ldt);
  attnZero(prow, 0, j0); attnZero(prow, j1, nk);
  attnZero(dsrow, 0, j0); attnZero(dsrow, j1, nk);
  const loV = i32x4.splat(lo - 1), hiV = i32x4.splat(hi), iota = i32x4(0, 1, 2, 3), zero = f32x4.splat(0);
  const cV = f32x4.splat(softcap), invC = f32x4.splat(softcap > 0 ? 1 / softcap : 0);
  const lseV = f32x4.splat(lse), dV = f32x4.splat(D), scaleV = f32x4.splat(scale), one = f32x4.splat(1);
  for (let j = j0; j < j1; j += 4) {
    const o = <usize>j << 2;
    let s = v128.load(prow + o);
    let ds = f32x4.mul(f32x4.sub(v128.load(dsrow + o), dV), scaleV);
    if (softcap > 0) {
      const t = tanh4(f32x4.mul(s, invC));
      s = f32x4.mul(cV, t);
      ds = f32x4.mul(ds, f32x4.sub(one, f32x4.mul(t, t)));
    }
    const idx = i32x4.add(i32x4.splat(j), iota);
    const ok = v128.and(v128.and(i32x4.gt_s(idx, loV), i32x4.gt_s(hiV, idx)), v128.load(keep + o));
    const p = v128.bitselect(exp4(f32x4.sub(s, lseV)), zero, ok);
    v128.store(prow + o, p);
    v128.store(dsrow + o, v128.bitselect(f32x4.mul(p, ds), zero, ok));
  }
}

/** keep[j] = -1 where key j of batch b is kept (mask != 0 or no mask), 0 where padded or j >= S; n entries. */
function attnKeepMask(keep: usize, mask: usize, b: i32, S: i32, n: i32): void {
  for (let j = 0; j < n; j++) {
    let ok = j < S;
    if (ok && mask != 0) ok = load<f32>(mask + (<usize>(b * S + j) << 2)) != 0;
    store<i32>(keep + (<usize>j << 2), ok ? -1 : 0);
  }
}

/** Queries per block so that `tiles` tiles of [tq x S] fit the scratch beside keep and rowStat; 0 if none fits. */
function attnBlockRows(T: i32, S: i32, tiles: i32): i32 {
  const avail = SCRATCH_FLOATS - (S + 8) - QBLOCK;
  const ldS = (S + 3) & ~3;
  return min(min(QBLOCK, max(T, 1)), avail / (tiles * ldS));
}

// ---- kernels ----

/**
 * Forward. q [B, T, H, Dh], k, v [B, S, Hkv, Dh], mask [B, S] or 0, out [B, T, H, Dh], lse [B, H, T].
 * Work unit: one (b, h) of B * H.
 */
export function attention(
  q: usize, k: usize, v: usize, mask: usize, out: usize, lse: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, Dh: i32, scale: f32, causal: i32, window: i32, softcap: f32,
  start: i32, end: i32, scratch: usize,
): i32 {
  const tq = attnBlockRows(T, S, 1);
  if (tq < 1) return 2;
  const group = H / Hkv, qs = H * Dh, ks = Hkv * Dh;
  const keep = scratch, rowInv = keep + (<usize>(S + 8) << 2), tile = rowInv + (<usize>QBLOCK << 2);
  for (let unit = start; unit < end; unit++) {
    const b = unit / H, h = unit % H, g = h / group;
    attnKeepMask(keep, mask, b, S, S + 8);
    for (let i0 = 0; i0 < T; i0 += tq) {
      const rows = min(tq, T - i0), p0 = i0 + S - T;
      const jhi = causal != 0 ? min(S, p0 + rows) : S;
      const jlo = window > 0 ? max(0, p0 - window + 1) : 0;
      const nk = jhi - jlo;
      const ob = out + (<usize>((b * T + i0) * qs + h * Dh) << 2);
      const lb = lse + (<usize>((b * H + h) * T + i0) << 2);
      if (nk <= 0) {
        for (let r = 0; r < rows; r++) {
          attnZero(ob + (<usize>(r * qs) << 2), 0, Dh);
          store<f32>(lb + (<usize>r << 2), NEG_INF);
        }
        continue;
      }
      const ldt = (nk + 3) & ~3, dg = causal != 0 ? p0 - jlo : nk;
      const qb = q + (<usize>((b * T + i0) * qs + h * Dh) << 2);
      const kb = k + (<usize>((b * S + jlo) * ks + g * Dh) << 2);
      const vb = v + (<usize>((b * S + jlo) * ks + g * Dh) << 2);
      attnScoreTile(qb, qs, rows, kb, ks, nk, dg, Dh, tile, ldt, scale);
      for (let r = 0; r < rows; r++) {
        const lo = window > 0 ? max(0, p0 + r - window + 1 - jlo) : 0;
        const hi = causal != 0 ? min(nk, p0 + r + 1 - jlo) : nk;
        const l = attnForwardRow(tile + (<usize>(r * ldt) << 2), nk, lo, hi, keep + (<usize>jlo << 2), softcap);
        store<f32>(lb + (<usize>r << 2), l);
        store<f32>(rowInv + (<usize>r << 2), attnRowInv);
      }
      attnRowsTimes(tile, ldt, rows, nk, dg, vb, ks, Dh, ob, qs);
      for (let r = 0; r < rows; r++) {
        const orow = ob + (<usize>(r * qs) << 2), inv = f32x4.splat(load<f32>(rowInv + (<usize>r << 2)));
        let d = 0;
        for (; d + 4 <= Dh; d += 4) v128.store(orow + (<usize>d << 2), f32x4.mul(v128.load(orow + (<usize>d << 2)), inv));
        for (; d < Dh; d++) store<f32>(orow + (<usize>d << 2), load<f32>(orow + (<usize>d << 2)) * f32x4.extract_lane(inv, 0));
      }
    }
  }
  return 0;
}

/**
 * Backward. Same tensors as `attention` plus dout, dq [B, T, H, Dh], dk, dv [B, S, Hkv, Dh], all
 * written (not accumulated). Work unit: one (b, g) of B * Hkv, which owns dk, dv of kv head g and
 * dq of its query heads, so no two threads write the same address.
 */
export function attention_grad(
  q: usize, k: usize, v: usize, mask: usize, out: usize, lse: usize, dout: usize,
  dq: usize, dk: usize, dv: usize,
  B: i32, T: i32, S: i32, H: i32, Hkv: i32, Dh: i32, scale: f32, causal: i32, window: i32, softcap: f32,
  start: i32, end: i32, scratch: usize,
): i32 {
  const tq = attnBlockRows(T, S, 2);
  if (tq < 1) return 2;
  const group = H / Hkv, qs = H * Dh, ks = Hkv * Dh;
  const keep = scratch, tile = keep + (<usize>(S + 8 + QBLOCK) << 2);
  const tile2 = tile + (<usize>(tq * ((S + 3) & ~3)) << 2);
  for (let unit = start; unit < end; unit++) {
    const b = unit / Hkv, g = unit % Hkv;
    attnKeepMask(keep, mask, b, S, S + 8);
    const kvb = <usize>(b * S * ks + g * Dh) << 2;
    for (let j = 0; j < S; j++) {
      attnZero(dk + kvb + (<usize>(j * ks) << 2), 0, Dh);
      attnZero(dv + kvb + (<usize>(j * ks) << 2), 0, Dh);
    }
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let i0 = 0; i0 < T; i0 += tq) {
        const rows = min(tq, T - i0), p0 = i0 + S - T;
        const jhi = causal != 0 ? min(S, p0 + rows) : S;
        const jlo = window > 0 ? max(0, p0 - window + 1) : 0;
        const nk = jhi - jlo;
        const qoff = <usize>((b * T + i0) * qs + h * Dh) << 2;
        if (nk <= 0) {
          for (let r = 0; r < rows; r++) attnZero(dq + qoff + (<usize>(r * qs) << 2), 0, Dh);
          continue;
        }
        const ldt = (nk + 3) & ~3, dg = causal != 0 ? p0 - jlo : nk;
        const koff = kvb + (<usize>(jlo * ks) << 2);
        attnScoreTile(q + qoff, qs, rows, k + koff, ks, nk, dg, Dh, tile, ldt, scale);
        attnScoreTile(dout + qoff, qs, rows, v + koff, ks, nk, dg, Dh, tile2, ldt, 1);
        const lb = lse + (<usize>((b * H + h) * T + i0) << 2);
        for (let r = 0; r < rows; r++) {
          const lo = window > 0 ? max(0, p0 + r - window + 1 - jlo) : 0;
          const hi = causal != 0 ? min(nk, p0 + r + 1 - jlo) : nk;
          const ro = qoff + (<usize>(r * qs) << 2);
          const D = attnDot(dout + ro, out + ro, Dh);
          const to = <usize>(r * ldt) << 2;
          attnBackwardRow(tile + to, tile2 + to, nk, lo, hi, keep + (<usize>jlo << 2), softcap,
            load<f32>(lb + (<usize>r << 2)), D, scale);
        }
        attnTransTimes(tile, ldt, rows, nk, dg, dout + qoff, qs, Dh, dv + koff, ks); // dv += P^T dO
        attnTransTimes(tile2, ldt, rows, nk, dg, q + qoff, qs, Dh, dk + koff, ks); // dk += scale dS^T Q
        attnRowsTimes(tile2, ldt, rows, nk, dg, k + koff, ks, Dh, dq + qoff, qs); // dq = scale dS K
      }
    }
  }
  return 0;
}
