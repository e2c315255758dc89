// The WebAssembly matmul (both builds, 1 and 2 threads) against the float64 reference kernel:
// every transpose combination, edge sizes around the register tile and the cache blocks,
// accumulation, padded row strides and batches with broadcast operands.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { matmulF32, type MatmulArgs } from '../../src/backend/cpu/fast/matmul.js';
import { matmul as matmulRef } from '../../src/backend/ref/matmul.js';

/** Deterministic uniform [-1, 1) generator (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  };
}

interface Case {
  M: number; N: number; K: number; transA: 0 | 1; transB: 0 | 1; accumulate: 0 | 1;
  batch?: number; broadcastA?: boolean; broadcastB?: boolean;
  /** Extra elements at the end of each stored row (tests lda, ldb, ldc > row length). */
  pad?: number;
}

const U = 2 ** -24; // float32 unit roundoff

/**
 * Runs one case on every runtime and compares with the float64 reference. Any summation order
 * has |error| <= (K + 2) u sum_k |a_ik b_kj| (+ |C_old| when accumulating), so the bound allows
 * every correct kernel, while a lost or doubled term (about mag / K) exceeds it.
 */
function check(rts: KernelRuntime[], cs: Case, seed: number, minParallelMadds?: number): void {
  const { M, N, K, transA, transB, accumulate } = cs;
  const batch = cs.batch ?? 1, pad = cs.pad ?? 0;
  const rowsA = transA ? K : M, colsA = transA ? M : K, rowsB = transB ? N : K, colsB = transB ? K : N;
  const lda = colsA + pad, ldb = colsB + pad, ldc = N + pad;
  const sizeA = rowsA * lda, sizeB = rowsB * ldb, sizeC = M * ldc;
  const strideA = cs.broadcastA ? 0 : sizeA, strideB = cs.broadcastB ? 0 : sizeB, strideC = sizeC;
  const nA = cs.broadcastA ? sizeA : sizeA * batch, nB = cs.broadcastB ? sizeB : sizeB * batch, nC = sizeC * batch;
  const r = rng(seed);
  const a = Float32Array.from({ length: nA }, r), b = Float32Array.from({ length: nB }, r);
  const c0 = Float32Array.from({ length: nC }, r);
  // Float64 truth and the magnitude sum_k |a||b| (+ |C_old|) that scales the rounding bound.
  const want = Float64Array.from(c0), mag = Float64Array.from(c0, (v) => (accumulate ? Math.abs(v) : 0));
  matmulRef(Float64Array.from(a), Float64Array.from(b), want, M, N, K, lda, ldb, ldc,
    transA, transB, accumulate, batch, strideA, strideB, strideC);
  matmulRef(Float64Array.from(a, Math.abs), Float64Array.from(b, Math.abs), mag, M, N, K, lda, ldb, ldc,
    transA, transB, 1, batch, strideA, strideB, strideC);
  for (const rt of rts) {
    const pa = rt.malloc(nA * 4), pb = rt.malloc(nB * 4), pc = rt.malloc(nC * 4);
    const heap = rt.heap().f32;
    heap.set(a, pa >> 2);
    heap.set(b, pb >> 2);
    heap.set(c0, pc >> 2);
    const args: MatmulArgs = {
      a: pa, b: pb, c: pc, M, N, K, transA, transB, accumulate, batch,
      strideA, strideB, strideC, lda, ldb, ldc,
    };
    matmulF32(rt, args, minParallelMadds);
    const got = rt.heap().f32.subarray(pc >> 2, (pc >> 2) + nC);
    const where = `M=${M} N=${N} K=${K} transA=${transA} transB=${transB} acc=${accumulate} batch=${batch} ` +
      `pad=${pad} bcastA=${!!cs.broadcastA} bcastB=${!!cs.broadcastB} relaxed=${rt.relaxed} threads=${rt.threads}`;
    for (let i = 0; i < nC; i++) {
      const inRow = i % ldc < N;
      // Padding columns of C must keep their old values.
      const expected = inRow ? want[i] : c0[i], tol = inRow ? (K + 2) * U * mag[i] + 1e-30 : 0;
      if (!(Math.abs(got[i] - expected) <= tol)) {
        assert.fail(`matmul ${where}: C[${i}] = ${got[i]}, want ${expected} (tolerance ${tol})`);
      }
    }
    rt.free(pa); rt.free(pb); rt.free(pc);
  }
}

const TRANS: [0 | 1, 0 | 1][] = [[0, 0], [0, 1], [1, 0], [1, 1]];

describe('matmul kernel vs float64 reference', () => {
  const rts: KernelRuntime[] = [];
  before(async () => {
    for (const relaxed of [true, false]) {
      for (const threads of [1, 2]) rts.push(await KernelRuntime.create({ threads, relaxed }));
    }
  });
  after(async () => {
    for (const rt of rts) await rt.close();
  });

  it('builds both the relaxed and the plain SIMD kernels', () => {
    assert.equal(rts[2].relaxed, false);
    assert.equal(rts[0].threads, 1);
    assert.equal(rts[1].threads, 2);
  });

  it('edge sizes 1, 7, 33, 65, 130 in every transpose combination (threads split even tiny products)', () => {
    const sizes = [1, 7, 33, 65, 130];
    let seed = 1;
    for (const M of sizes) for (const N of sizes) for (const K of sizes) {
      for (const [transA, transB] of TRANS) {
        check(rts, { M, N, K, transA, transB, accumulate: (seed & 1) as 0 | 1 }, seed++, 0);
      }
    }
  });

  it('few rows (decoding: dot products and in-place B) with M = 2, 3, 5', () => {
    let seed = 500;
    for (const M of [2, 3, 5]) for (const [N, K] of [[9, 5], [33, 64], [130, 37]]) {
      for (const [transA, transB] of TRANS) {
        check(rts, { M, N, K, transA, transB, accumulate: (seed & 1) as 0 | 1 }, seed++, 0);
      }
    }
  });

  it('blocks of depth, rows and columns beyond one cache block (K > 256, M > 128, N > 2048)', () => {
    let seed = 1000;
    for (const [transA, transB] of TRANS) {
      check(rts, { M: 141, N: 37, K: 530, transA, transB, accumulate: 1 }, seed++);
      check(rts, { M: 9, N: 2100, K: 259, transA, transB, accumulate: 0 }, seed++);
    }
  });

  it('row strides longer than the rows (views into wider matrices)', () => {
    let seed = 2000;
    for (const [transA, transB] of TRANS) {
      check(rts, { M: 13, N: 21, K: 17, transA, transB, accumulate: 0, pad: 5 }, seed++, 0);
      check(rts, { M: 70, N: 9, K: 33, transA, transB, accumulate: 1, pad: 3, batch: 2 }, seed++, 0);
    }
  });

  it('batches, with A or B broadcast by a stride of 0', () => {
    let seed = 3000;
    for (const [transA, transB] of TRANS) {
      for (const [broadcastA, broadcastB] of [[false, false], [true, false], [false, true]]) {
        check(rts, { M: 7, N: 33, K: 20, batch: 3, broadcastA, broadcastB, transA, transB, accumulate: 0 }, seed++, 0);
        check(rts, { M: 45, N: 12, K: 65, batch: 5, broadcastA, broadcastB, transA, transB, accumulate: 1 }, seed++, 0);
        check(rts, { M: 1, N: 5, K: 3, batch: 9, broadcastA, broadcastB, transA, transB, accumulate: 0 }, seed++, 0);
      }
    }
  });

  it('K = 0 gives C = 0, or leaves C unchanged when accumulating', () => {
    check(rts, { M: 5, N: 9, K: 0, transA: 0, transB: 0, accumulate: 0 }, 4000, 0);
    check(rts, { M: 5, N: 9, K: 0, transA: 1, transB: 1, accumulate: 1 }, 4001, 0);
  });

  it('rejects a shared C across a batch and strides shorter than the rows', () => {
    const base = { a: 0, b: 0, c: 0, M: 2, N: 3, K: 4, transA: 0, transB: 0 } as const;
    assert.throws(() => matmulF32(rts[0], { ...base, batch: 2, strideC: 0 }), /strideC = 0/);
    assert.throws(() => matmulF32(rts[0], { ...base, lda: 3 }), /lda=3/);
    const top = rts[0].memory.buffer.byteLength;
    assert.throws(() => matmulF32(rts[0], { ...base, c: top - 16 }), /C spans bytes/);
  });
});
