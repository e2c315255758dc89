// The native matmul addon (src/backend/cpu/native.ts) against the float64 reference kernel:
// every transpose combination, edge sizes around the register tiles (14 x 32, 6 x 16, 4 x 8) and
// cache blocks, sizes over 1000, accumulation, padded row strides, batches with broadcast operands,
// on 1 and 2 threads and with every micro-kernel this CPU runs. Results must also be bit-identical
// from run to run, across thread counts and across micro-kernels (gemm.h: summation order).
// Skips, loudly, when the addon is not built.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { loadNative, nativeLoadError, nativeMatmul, type NativeAddon } from '../../src/backend/cpu/native.js';
import { assertClose, prepare, run, type Case } from './matmul-cases.js';
import { rng } from './helpers.js';

const TRANS: [0 | 1, 0 | 1][] = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];

const addon = await loadNative();
const skip = addon === null ? `native addon not built: ${nativeLoadError}` : false;
if (skip) console.error(`\n*** SKIPPING test/kernels/native.test: ${skip} ***\n`);

/**
 * Runs one case with every micro-kernel on every runtime; compares with the float64 reference
 * within (K + 2) u sum_k |a_ik b_kj| (+ |C_old|), a bound every summation order meets while a lost
 * or doubled term breaks it, and requires all runs to agree bit for bit.
 */
function check(rts: KernelRuntime[], kernels: string[], cs: Case, seed: number): void {
  const native = addon as NativeAddon;
  const r = rng(seed);
  const p = prepare(cs, () => r() * 2 - 1);
  let first: Float32Array | null = null,
    firstWhere = '';
  for (const kernel of kernels) {
    assert.ok(native.select(kernel), `select(${kernel})`);
    for (const rt of rts) {
      for (let rep = 0; rep < 2; rep++) {
        const got = run(rt, p, nativeMatmul);
        const where = `${p.where} kernel=${kernel} threads=${rt.threads} run=${rep}`;
        if (first === null) {
          assertClose(got, p, `native matmul ${where}`);
          first = got;
          firstWhere = where;
          continue;
        }
        for (let i = 0; i < got.length; i++) {
          if (!Object.is(got[i], first[i])) {
            assert.fail(
              `native matmul ${where}: C[${i}] = ${got[i]} differs from ${first[i]} computed with ${firstWhere} ` +
                '(the summation order must not depend on threads, runs or micro-kernel: native/src/gemm.h)',
            );
          }
        }
      }
    }
  }
}

describe('native matmul vs float64 reference', { skip }, () => {
  const rts: KernelRuntime[] = [];
  let kernels: string[] = [];
  before(async () => {
    for (const threads of [1, 2]) rts.push(await KernelRuntime.create({ threads }));
    kernels = (addon as NativeAddon).info().available.split(',');
  });
  after(async () => {
    (addon as NativeAddon).select('auto');
    for (const rt of rts) await rt.close();
  });

  it('reports its micro-kernels and picks the best by default', () => {
    const info = (addon as NativeAddon).info();
    assert.ok(kernels.includes('scalar'), `available: ${info.available}`);
    assert.equal(info.kernel, kernels[0]);
    assert.equal((addon as NativeAddon).select('no-such-kernel'), false);
  });

  it('edge sizes 1, 7, 33, 65, 130 in every transpose combination', () => {
    const sizes = [1, 7, 33, 65, 130];
    let seed = 1;
    for (const M of sizes)
      for (const N of sizes)
        for (const K of sizes) {
          const [transA, transB] = TRANS[seed % 4];
          check(rts, kernels, { M, N, K, transA, transB, accumulate: ((seed >> 2) & 1) as 0 | 1 }, seed++);
        }
  });

  it('sizes over 1000 and K over several cache blocks (threads split M or N)', () => {
    let seed = 1000;
    for (const [transA, transB] of TRANS) {
      check(rts, kernels, { M: 1031, N: 45, K: 300, transA, transB, accumulate: 0 }, seed++);
      check(rts, kernels, { M: 15, N: 1100, K: 530, transA, transB, accumulate: 1 }, seed++);
      check(rts, kernels, { M: 61, N: 97, K: 1029, transA, transB, accumulate: 0 }, seed++);
    }
    check(rts, kernels, { M: 4100, N: 33, K: 9, transA: 0, transB: 1, accumulate: 1 }, seed++);
    check(rts, kernels, { M: 3, N: 4500, K: 40, transA: 1, transB: 0, accumulate: 0 }, seed++);
  });

  it('random shapes', () => {
    const r = rng(77);
    for (let seed = 5000; seed < 5040; seed++) {
      const dim = () => 1 + Math.floor(r() ** 2 * 300);
      const [transA, transB] = TRANS[Math.floor(r() * 4)];
      check(
        rts,
        kernels,
        {
          M: dim(),
          N: dim(),
          K: dim(),
          transA,
          transB,
          accumulate: r() < 0.5 ? 1 : 0,
          batch: 1 + Math.floor(r() * 3),
          pad: r() < 0.3 ? 3 : 0,
        },
        seed,
      );
    }
  });

  it('row strides longer than the rows (views into wider matrices)', () => {
    let seed = 2000;
    for (const [transA, transB] of TRANS) {
      check(rts, kernels, { M: 13, N: 21, K: 17, transA, transB, accumulate: 0, pad: 5 }, seed++);
      check(rts, kernels, { M: 70, N: 90, K: 133, transA, transB, accumulate: 1, pad: 3, batch: 2 }, seed++);
    }
  });

  it('batches, with A or B broadcast by a stride of 0 (batches split across threads)', () => {
    let seed = 3000;
    for (const [transA, transB] of TRANS) {
      for (const [broadcastA, broadcastB] of [
        [false, false],
        [true, false],
        [false, true],
      ]) {
        check(
          rts,
          kernels,
          { M: 7, N: 33, K: 20, batch: 3, broadcastA, broadcastB, transA, transB, accumulate: 0 },
          seed++,
        );
        check(
          rts,
          kernels,
          { M: 45, N: 120, K: 65, batch: 5, broadcastA, broadcastB, transA, transB, accumulate: 1 },
          seed++,
        );
        check(
          rts,
          kernels,
          { M: 64, N: 64, K: 64, batch: 8, broadcastA, broadcastB, transA, transB, accumulate: 0 },
          seed++,
        );
        check(
          rts,
          kernels,
          { M: 1, N: 5, K: 3, batch: 9, broadcastA, broadcastB, transA, transB, accumulate: 0 },
          seed++,
        );
      }
    }
  });

  it('K = 0 gives C = 0, or leaves C unchanged when accumulating', () => {
    check(rts, kernels, { M: 5, N: 9, K: 0, transA: 0, transB: 0, accumulate: 0 }, 4000);
    check(rts, kernels, { M: 500, N: 900, K: 0, transA: 1, transB: 1, accumulate: 1 }, 4001);
  });

  it('rejects operands outside the memory, misaligned offsets, a shared C across a batch and bad sizes', () => {
    const rt = rts[0],
      end = rt.heap().u8.length;
    const base = { a: 0, b: 0, c: 0, M: 2, N: 3, K: 4, transA: 0, transB: 0 } as const;
    assert.throws(() => nativeMatmul(rt, { ...base, c: end - 8 }), /c at byte .* past the memory/);
    assert.throws(() => nativeMatmul(rt, { ...base, a: 2 }), /a at byte 2 .*misaligned/);
    assert.throws(() => nativeMatmul(rt, { ...base, b: end - 4, batch: 2, strideB: 0, strideC: 6 }), /b at byte/);
    assert.throws(() => nativeMatmul(rt, { ...base, batch: 2, strideC: 0 }), /strideC = 0/);
    assert.throws(() => nativeMatmul(rt, { ...base, M: -1 }), /M = -1 must be an integer in \[0, 2147483647\]/);
    assert.throws(
      () => nativeMatmul(rt, { ...base, K: 2 ** 31 }),
      /K = 2147483648 must be an integer in \[0, 2147483647\]/,
    );
    assert.throws(() => nativeMatmul(rt, { ...base, c: 2 ** 31 }), /c at byte 2147483648 .* past the memory/);
    assert.throws(
      () => nativeMatmul(rt, { ...base, c: 2 ** 32 }),
      /c = 4294967296 must be an integer in \[0, 4294967295\]/,
    );
    assert.throws(() => nativeMatmul(rt, { ...base, lda: 3 }), /a at byte 0 .*ld < columns/);
  });
});
