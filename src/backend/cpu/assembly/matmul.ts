// Fast f32 matrix multiply (docs/kernels.md, `matmul`): C[i] (+)= op(A[i]) op(B[i]), batched.
//
// GotoBLAS/BLIS structure. For each block of C, B is packed into column panels of NR (kc x NR,
// k-major) and A into row panels of MR (kc x MR, k-major, each value splatted to a v128) in the
// thread's scratch, so the micro-kernel reads both operands contiguously whatever the transposes.
// The micro-kernel keeps an MR x NR = 4 x 8 tile of C in 8 v128 accumulators; per step of k it
// loads 2 vectors of B and 4 splatted values of A and does 8 multiply-adds. Larger tiles (6 x 8,
// 4 x 12) measured slower: V8 hoists every load of a step above the arithmetic, so with more than
// 8 accumulators the 15 allocatable xmm registers run out and accumulators spill. Packing pads
// partial panels with zeros, so edges run through the same micro-kernel; only the store is masked.
//
// Work units: the thread range [start, end) counts row strips of MR rows of each batch element
// (batch-major), or column strips of NR columns when there are too few row strips to share well
// (small M); `matmul_units` says how many units a product has. Threads thus write disjoint C.
//
// B stored as bfloat16 (`matmul_bf16b`, a frozen weight): the code is generic over B's element
// type TB (f32, or u16 holding bf16 bits), and every read of B goes through loadB / loadB4, which
// widen bf16 exactly (the bits become a float's top half): while packing, in the dot products,
// and in the micro-kernel when it reads B in place. The arithmetic is untouched, so the result is
// bit for bit that of `matmul` on the widened B, with no widened copy of B anywhere.

const MR = 4; // rows of the register tile
const NR = 8; // columns of the register tile (2 v128)
const KC = 256; // depth of a packed panel: B micro-panel KC*NR*4 = 8 KiB, A micro-panel 16 KiB (L1)
const MC = 64; // rows of a packed A block: MC*KC*16 = 256 KiB (L2)
const NC = 2048; // columns of a packed B block: KC*NC*4 = 2 MiB (L3)
// Scratch layout (bytes): packed B block, packed A block, one edge tile.
const PACK_A = KC * NC * 4;
const EDGE = PACK_A + MC * KC * 16;
const SCRATCH_NEED = EDGE + MR * NR * 4;
// Row ranges up to this many read untransposed B in place rather than packed (see block).
const DIRECT_B_ROWS = 16;
// Row ranges up to this many times a transposed B run as dot products (see dotRows), as long as
// their rows of op(A) fit the scratch.
const DOT_ROWS = 2;
const DOT_MAX_A = (4 << 20) / 4 - 64;
// Row strips suffice for a good split once there are this many (or more than column strips).
const ROW_UNITS_ENOUGH = 64;

/** Whether the work units of this product are row strips (else column strips). */
@inline function byRows(M: i32, N: i32, batch: i32): bool {
  const rows = batch * ((M + MR - 1) / MR), cols = batch * ((N + NR - 1) / NR);
  return rows >= min(cols, ROW_UNITS_ENOUGH);
}

/** Number of work units of a product (the `n` to pass to the runtime for `matmul`). */
export function matmul_units(M: i32, N: i32, batch: i32): i32 {
  return byRows(M, N, batch) ? batch * ((M + MR - 1) / MR) : batch * ((N + NR - 1) / NR);
}

/**
 * C (M x N, row stride ldc) (+)= op(A) op(B) for batch elements, over work units [start, end)
 * (see the header). Pointers are byte addresses; sizes and strides are in elements.
 */
export function matmul(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, lda: i32, ldb: i32, ldc: i32,
  transA: i32, transB: i32, accumulate: i32, batch: i32, strideA: i32, strideB: i32, strideC: i32,
  start: i32, end: i32, scratch: usize,
): i32 {
  return matmulOf<f32>(a, b, c, M, N, K, lda, ldb, ldc, transA, transB, accumulate, batch, strideA, strideB, strideC, start, end, scratch);
}

/** `matmul` with B stored as bfloat16 bits (2 bytes an element; ldb, strideB in elements). */
export function matmul_bf16b(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, lda: i32, ldb: i32, ldc: i32,
  transA: i32, transB: i32, accumulate: i32, batch: i32, strideA: i32, strideB: i32, strideC: i32,
  start: i32, end: i32, scratch: usize,
): i32 {
  return matmulOf<u16>(a, b, c, M, N, K, lda, ldb, ldc, transA, transB, accumulate, batch, strideA, strideB, strideC, start, end, scratch);
}

/** log2 of the bytes of one element of B (TB: f32, or u16 for bf16 bits). */
@inline function bShift<TB>(): usize {
  return sizeof<TB>() == 2 ? 1 : 2;
}

/** The element of B at byte address p as f32 (bf16 widened exactly). */
@inline function loadB<TB>(p: usize): f32 {
  if (sizeof<TB>() == 2) return reinterpret<f32>(<u32>load<u16>(p) << 16);
  return load<f32>(p);
}

/** 4 consecutive elements of B at byte address p as an f32x4 (bf16 widened exactly). */
@inline function loadB4<TB>(p: usize): v128 {
  if (sizeof<TB>() == 2) return i32x4.shl(v128.load16x4_u(p), 16);
  return v128.load(p);
}

function matmulOf<TB>(
  a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, lda: i32, ldb: i32, ldc: i32,
  transA: i32, transB: i32, accumulate: i32, batch: i32, strideA: i32, strideB: i32, strideC: i32,
  start: i32, end: i32, scratch: usize,
): i32 {
  if (SCRATCH_NEED > (4 << 20)) return 2;
  const rows = byRows(M, N, batch);
  const per = rows ? (M + MR - 1) / MR : (N + NR - 1) / NR;
  let u = start;
  while (u < end) {
    const bi = u / per;
    const s0 = u - bi * per, s1 = min(per, end - bi * per);
    const ab = a + (<usize>(bi * strideA) << 2), bb = b + (<usize>(bi * strideB) << bShift<TB>());
    const cb = c + (<usize>(bi * strideC) << 2);
    if (rows) {
      block<TB>(ab, bb, cb, s0 * MR, min(M, s1 * MR), 0, N, K, lda, ldb, ldc, transA, transB, accumulate, scratch);
    } else {
      block<TB>(ab, bb, cb, 0, M, s0 * NR, min(N, s1 * NR), K, lda, ldb, ldc, transA, transB, accumulate, scratch);
    }
    u = bi * per + s1;
  }
  return 0;
}

/** C[i0:i1, j0:j1] (+)= op(A)[i0:i1, :] op(B)[:, j0:j1] for one batch element. */
function block<TB>(
  a: usize, b: usize, c: usize, i0: i32, i1: i32, j0: i32, j1: i32, K: i32,
  lda: i32, ldb: i32, ldc: i32, transA: i32, transB: i32, accumulate: i32, scratch: usize,
): void {
  if (K == 0) {
    if (!accumulate) {
      for (let i = i0; i < i1; i++) memory.fill(c + ((<usize>i * ldc + j0) << 2), 0, <usize>(j1 - j0) << 2);
    }
    return;
  }
  if (transB && i1 - i0 <= DOT_ROWS && (i1 - i0) * K <= DOT_MAX_A) {
    dotRows<TB>(a, b, c, i0, i1, j0, j1, K, lda, ldb, ldc, transA, accumulate, scratch);
    return;
  }
  const bPack = scratch, aPack = scratch + PACK_A, edge = scratch + EDGE;
  // With few rows each element of B is used only a few times, so packing it would cost more than
  // it saves: full panels of an untransposed B are then read in place (row stride ldb).
  const direct = !transB && i1 - i0 <= DIRECT_B_ROWS;
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      const add = accumulate != 0 || pc > 0;
      const packed = direct ? nc & ~(NR - 1) : 0; // columns not packed
      if (packed < nc) packB<TB>(b, ldb, transB, pc, kc, jc + packed, nc - packed, bPack + (<usize>(packed * kc) << 2));
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        packA(a, lda, transA, ic, mc, pc, kc, aPack);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const inPlace = jr < packed;
          for (let ir = 0; ir < mc; ir += MR) {
            const ap = aPack + (<usize>(ir * kc) << 4);
            const cp = c + ((<usize>(ic + ir) * ldc + jc + jr) << 2);
            if (inPlace) {
              const bp = b + ((<usize>pc * ldb + jc + jr) << bShift<TB>());
              micro<TB>(kc, ap, bp, <usize>ldb << bShift<TB>(), cp, ldc, add, min(MR, mc - ir), nr, edge);
            } else {
              micro<f32>(kc, ap, bPack + (<usize>(jr * kc) << 2), NR * 4, cp, ldc, add, min(MR, mc - ir), nr, edge);
            }
          }
        }
      }
    }
  }
}

/**
 * C[i0:i1, j0:j1] (+)= op(A)[i0:i1, :] B^T for B stored [N, K] (x W^T while decoding): each value
 * of C is the dot product of two contiguous rows, so B streams through once, unpacked; rows of C
 * are done two at a time against 4 rows of B (8 accumulators).
 */
function dotRows<TB>(
  a: usize, b: usize, c: usize, i0: i32, i1: i32, j0: i32, j1: i32, K: i32,
  lda: i32, ldb: i32, ldc: i32, transA: i32, accumulate: i32, scratch: usize,
): void {
  let ar = a + ((<usize>i0 * lda) << 2), as: usize = <usize>lda << 2; // first row of op(A), row stride
  if (transA) {
    // A is stored [K, M]: gather the rows of op(A) (columns of A) into the scratch, after 64 B
    // that hold the sums of one group of columns.
    for (let i = i0; i < i1; i++) {
      const d = scratch + 64 + (<usize>((i - i0) * K) << 2);
      for (let k = 0; k < K; k++) store<f32>(d + (<usize>k << 2), load<f32>(a + ((<usize>k * lda + i) << 2)));
    }
    ar = scratch + 64;
    as = <usize>K << 2;
  }
  const sh = bShift<TB>(), bs = <usize>ldb << sh, k4 = K & ~3, sums = scratch;
  for (let i = i0; i < i1; i += 2) {
    const rows = min(2, i1 - i);
    const ra = ar + <usize>(i - i0) * as, rb = rows > 1 ? ra + as : ra;
    for (let j = j0; j < j1; j += 4) {
      const nj = min(4, j1 - j);
      const bj = b + ((<usize>j * ldb) << sh);
      // Rows of B past j1 are read as row j (their sums are dropped).
      const b1r = nj > 1 ? bj + bs : bj, b2r = nj > 2 ? bj + 2 * bs : bj, b3r = nj > 3 ? bj + 3 * bs : bj;
      let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
      let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
      for (let k = 0; k < k4; k += 4) {
        const o = <usize>k << 2, ob = <usize>k << sh;
        const va = v128.load(ra + o), vb = v128.load(rb + o);
        const w0 = loadB4<TB>(bj + ob), w1 = loadB4<TB>(b1r + ob), w2 = loadB4<TB>(b2r + ob), w3 = loadB4<TB>(b3r + ob);
        x0 = madd(va, w0, x0); x1 = madd(va, w1, x1); x2 = madd(va, w2, x2); x3 = madd(va, w3, x3);
        y0 = madd(vb, w0, y0); y1 = madd(vb, w1, y1); y2 = madd(vb, w2, y2); y3 = madd(vb, w3, y3);
      }
      v128.store(sums, hsum4(x0, x1, x2, x3));
      v128.store(sums, hsum4(y0, y1, y2, y3), 16);
      for (let r = 0; r < rows; r++) {
        const rr = r ? rb : ra, ci = c + ((<usize>(i + r) * ldc + j) << 2);
        for (let jj = 0; jj < nj; jj++) {
          let v = load<f32>(sums + (<usize>(r * 4 + jj) << 2));
          const bjj = bj + <usize>jj * bs;
          for (let k = k4; k < K; k++) v += load<f32>(rr + (<usize>k << 2)) * loadB<TB>(bjj + (<usize>k << sh));
          const cj = ci + (<usize>jj << 2);
          store<f32>(cj, accumulate ? load<f32>(cj) + v : v);
        }
      }
    }
  }
}

/** (sum of x0's lanes, of x1's, of x2's, of x3's). */
@inline function hsum4(x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const t0 = f32x4.add(i32x4.shuffle(x0, x1, 0, 4, 1, 5), i32x4.shuffle(x0, x1, 2, 6, 3, 7));
  const t1 = f32x4.add(i32x4.shuffle(x2, x3, 0, 4, 1, 5), i32x4.shuffle(x2, x3, 2, 6, 3, 7));
  return f32x4.add(i32x4.shuffle(t0, t1, 0, 1, 4, 5), i32x4.shuffle(t0, t1, 2, 3, 6, 7));
}

/**
 * Packs op(A)[i0:i0+mc, p0:p0+kc] into panels of MR rows, each kc x MR (k-major), zero-padded.
 * Each value is stored splatted to a whole v128, so the micro-kernel loads it ready to multiply
 * (V8 folds the constant offset of v128.load into the address, not that of load32_splat).
 */
function packA(a: usize, lda: i32, transA: i32, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  if (transA) {
    // A is stored [K, M]: walk its rows, each across all panels (rows are lda apart: reading a
    // panel at a time would touch kc rows of few cache sets when lda is a power of two).
    for (let k = 0; k < kc; k++) {
      const s = a + ((<usize>(p0 + k) * lda + i0) << 2);
      for (let ir = 0; ir < mc; ir += MR) {
        const d = dst + (<usize>(ir * kc + k * MR) << 4), si = s + (<usize>ir << 2);
        if (ir + MR <= mc) {
          v128.store(d, v128.load32_splat(si));
          v128.store(d, v128.load32_splat(si, 4), 16);
          v128.store(d, v128.load32_splat(si, 8), 32);
          v128.store(d, v128.load32_splat(si, 12), 48);
        } else {
          for (let i = 0; i < MR; i++) {
            v128.store(d + (<usize>i << 4), ir + i < mc ? v128.load32_splat(si + (<usize>i << 2)) : f32x4.splat(0));
          }
        }
      }
    }
    return;
  }
  // A is stored [M, K]: row i is contiguous along k.
  for (let ir = 0; ir < mc; ir += MR) {
    const d = dst + (<usize>(ir * kc) << 4);
    for (let i = 0; i < MR; i++) {
      const di = d + (<usize>i << 4);
      if (ir + i < mc) {
        const s = a + ((<usize>(i0 + ir + i) * lda + p0) << 2);
        for (let k = 0; k < kc; k++) v128.store(di + (<usize>(k * MR) << 4), v128.load32_splat(s + (<usize>k << 2)));
      } else {
        for (let k = 0; k < kc; k++) v128.store(di + (<usize>(k * MR) << 4), f32x4.splat(0));
      }
    }
  }
}

/** Packs op(B)[p0:p0+kc, j0:j0+nc] into panels of NR columns, each kc x NR (k-major), zero-padded. */
function packB<TB>(b: usize, ldb: i32, transB: i32, p0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  if (transB) {
    packBT<TB>(b, ldb, p0, kc, j0, nc, dst);
    return;
  }
  const sh = bShift<TB>();
  // B is stored [K, N]: 4 rows at a time across all panels, so that B is read row after row (a
  // panel at a time would read kc rows ldb apart, of few cache sets when ldb is a power of two).
  for (let k0 = 0; k0 < kc; k0 += 4) {
    const k1 = min(kc, k0 + 4);
    for (let jr = 0; jr < nc; jr += NR) {
      const nr = min(NR, nc - jr);
      const d = dst + (<usize>(jr * kc) << 2);
      for (let k = k0; k < k1; k++) {
        const s = b + ((<usize>(p0 + k) * ldb + j0 + jr) << sh), dk = d + (<usize>(k * NR) << 2);
        if (nr == NR) {
          if (sizeof<TB>() == 2) {
            v128.store(dk, i32x4.shl(v128.load16x4_u(s), 16));
            v128.store(dk, i32x4.shl(v128.load16x4_u(s, 8), 16), 16);
          } else {
            v128.store(dk, v128.load(s));
            v128.store(dk, v128.load(s, 16), 16);
          }
        } else {
          for (let j = 0; j < NR; j++) store<f32>(dk + (<usize>j << 2), j < nr ? loadB<TB>(s + (<usize>j << sh)) : 0);
        }
      }
    }
  }
}

/** packB for B stored [N, K]: column j of op(B) is the contiguous row j; 4 x 4 blocks transposed. */
function packBT<TB>(b: usize, ldb: i32, p0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  const sh = bShift<TB>(), rs = <usize>ldb << sh;
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const d = dst + (<usize>(jr * kc) << 2), s = b + ((<usize>(j0 + jr) * ldb + p0) << sh);
    if (nr == NR) {
      let k = 0;
      for (; k + 4 <= kc; k += 4) {
        const sk = s + (<usize>k << sh), dk = d + (<usize>(k * NR) << 2);
        transpose4<TB>(sk, rs, dk);
        transpose4<TB>(sk + 4 * rs, rs, dk + 16);
      }
      for (; k < kc; k++) {
        const sk = s + (<usize>k << sh), dk = d + (<usize>(k * NR) << 2);
        for (let j = 0; j < NR; j++) store<f32>(dk + (<usize>j << 2), loadB<TB>(sk + <usize>j * rs));
      }
    } else {
      for (let j = 0; j < NR; j++) {
        const dj = d + (<usize>j << 2), sj = s + <usize>j * rs;
        for (let k = 0; k < kc; k++) store<f32>(dj + (<usize>(k * NR) << 2), j < nr ? loadB<TB>(sj + (<usize>k << sh)) : 0);
      }
    }
  }
}

/** Rows r0..r3 at s (row stride rs bytes), 4 elements of B each, stored transposed as f32: d + k * NR * 4 gets column k. */
@inline function transpose4<TB>(s: usize, rs: usize, d: usize): void {
  const r0 = loadB4<TB>(s), r1 = loadB4<TB>(s + rs), r2 = loadB4<TB>(s + 2 * rs), r3 = loadB4<TB>(s + 3 * rs);
  const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t2 = i32x4.shuffle(r0, r1, 2, 6, 3, 7), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(d, i32x4.shuffle(t0, t1, 0, 1, 4, 5));
  v128.store(d, i32x4.shuffle(t0, t1, 2, 3, 6, 7), NR * 4);
  v128.store(d, i32x4.shuffle(t2, t3, 0, 1, 4, 5), NR * 8);
  v128.store(d, i32x4.shuffle(t2, t3, 2, 3, 6, 7), NR * 12);
}

/** acc + x * y, fused where relaxed SIMD is enabled. */
@inline function madd(x: v128, y: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(x, y, acc);
  return f32x4.add(acc, f32x4.mul(x, y));
}

/**
 * The MR x NR tile at cp (row stride ldc) (+)= packed A panel (kc x MR) * B panel (kc x NR, row
 * stride bs bytes: NR * 4 when packed; elements TB, read in place when bf16).
 * Only the top-left mr x nr part is stored (edges go through the `edge` tile).
 */
function micro<TB>(kc: i32, ap: usize, bp: usize, bs: usize, cp: usize, ldc: i32, add: bool, mr: i32, nr: i32, edge: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    let b0: v128, b1: v128;
    if (sizeof<TB>() == 2) {
      b0 = i32x4.shl(v128.load16x4_u(bp), 16);
      b1 = i32x4.shl(v128.load16x4_u(bp, 8), 16);
    } else {
      b0 = v128.load(bp);
      b1 = v128.load(bp, 16);
    }
    const x0 = v128.load(ap), x1 = v128.load(ap, 16), x2 = v128.load(ap, 32), x3 = v128.load(ap, 48);
    c00 = madd(x0, b0, c00); c01 = madd(x0, b1, c01);
    c10 = madd(x1, b0, c10); c11 = madd(x1, b1, c11);
    c20 = madd(x2, b0, c20); c21 = madd(x2, b1, c21);
    c30 = madd(x3, b0, c30); c31 = madd(x3, b1, c31);
    ap += MR * 16;
    bp += bs;
  }
  const full = mr == MR && nr == NR;
  const t = full ? cp : edge, ts: usize = full ? <usize>ldc << 2 : NR * 4;
  if (full && add) {
    c00 = f32x4.add(c00, v128.load(t)); c01 = f32x4.add(c01, v128.load(t, 16));
    c10 = f32x4.add(c10, v128.load(t + ts)); c11 = f32x4.add(c11, v128.load(t + ts, 16));
    c20 = f32x4.add(c20, v128.load(t + 2 * ts)); c21 = f32x4.add(c21, v128.load(t + 2 * ts, 16));
    c30 = f32x4.add(c30, v128.load(t + 3 * ts)); c31 = f32x4.add(c31, v128.load(t + 3 * ts, 16));
  }
  v128.store(t, c00); v128.store(t, c01, 16);
  v128.store(t + ts, c10); v128.store(t + ts, c11, 16);
  v128.store(t + 2 * ts, c20); v128.store(t + 2 * ts, c21, 16);
  v128.store(t + 3 * ts, c30); v128.store(t + 3 * ts, c31, 16);
  if (full) return;
  for (let i = 0; i < mr; i++) {
    const ci = cp + (<usize>(i * ldc) << 2), ei = edge + (<usize>(i * NR) << 2);
    for (let j = 0; j < nr; j++) {
      const v = load<f32>(ei + (<usize>j << 2));
      store<f32>(ci + (<usize>j << 2), add ? load<f32>(ci + (<usize>j << 2)) + v : v);
    }
  }
}
