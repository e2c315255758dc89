// The WebAssembly matmul (both builds, 1 and 2 threads) against the float64 reference kernel:
// every transpose combination, edge sizes around the register tile and the cache blocks,
// accumulation, padded row strides and batches with broadcast operands.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { matmulF32 } from '../../src/backend/cpu/fast/matmul.js';
import { assertClose, prepare, run, type Case } from './matmul-cases.js';
import { rng } from './helpers.js';

/** Runs one case on every runtime and compares with the float64 reference (matmul-cases.ts: assertClose). */
function check(rts: KernelRuntime[], cs: Case, seed: number, minParallelMadds?: number): void {
  const r = rng(seed);
  const p = prepare(cs, () => r() * 2 - 1);
  for (const rt of rts) {
    const got = run(rt, p, (r, args) => matmulF32(r, args, minParallelMadds));
    assertClose(got, p, `matmul ${p.where} relaxed=${rt.relaxed} threads=${rt.threads}`);
  }
}

const TRANS: [0 | 1, 0 | 1][] = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];

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
    for (const M of sizes)
      for (const N of sizes)
        for (const K of sizes) {
          for (const [transA, transB] of TRANS) {
            check(rts, { M, N, K, transA, transB, accumulate: (seed & 1) as 0 | 1 }, seed++, 0);
          }
        }
  });

  it('few rows (decoding: dot products and in-place B) with M = 2, 3, 5', () => {
    let seed = 500;
    for (const M of [2, 3, 5])
      for (const [N, K] of [
        [9, 5],
        [33, 64],
        [130, 37],
      ]) {
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
      for (const [broadcastA, broadcastB] of [
        [false, false],
        [true, false],
        [false, true],
      ]) {
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
