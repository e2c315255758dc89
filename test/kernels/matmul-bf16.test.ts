// Matmul with a bfloat16 B (frozen weights) on the WebAssembly kernel (both builds, 1 and 2
// threads) and the native addon (every micro-kernel, 1 and 2 threads): B is widened where the
// kernels pack or load it, so C must equal, bit for bit, the f32 kernel's C on the widened B.
// Cases: odd M / N / K around the register tiles and cache blocks, every transpose, the few-row
// paths (dot products, B read in place), padded row strides, batches with their own or a shared B,
// accumulation, and operand bounds counted in 2-byte elements.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { matmulBf16B } from '../../src/backend/cpu/fast/bf16.js';
import { matmulF32, type MatmulArgs } from '../../src/backend/cpu/fast/matmul.js';
import {
  loadNative,
  nativeLoadError,
  nativeMatmul,
  nativeMatmulBf16B,
  type NativeAddon,
} from '../../src/backend/cpu/native.js';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { bf16ToF32, f32ToBf16 } from '../../src/io/half.js';
import { assertClose, prepare, type Case, type Prepared } from './matmul-cases.js';
import { rng } from './helpers.js';

type Kernel = (rt: KernelRuntime, p: MatmulArgs) => void;

const TRANS: [0 | 1, 0 | 1][] = [
  [0, 0],
  [0, 1],
  [1, 0],
  [1, 1],
];

const addon = await loadNative();
const skipNative = addon === null ? `native addon not built: ${nativeLoadError}` : false;
if (skipNative) console.error(`\n*** SKIPPING the native part of test/kernels/matmul-bf16.test: ${skipNative} ***\n`);

const one = new Float32Array(1),
  oneBits = new Uint16Array(1);

/** The case with B's values rounded to bf16 (`p.b`, the f32 values) and B's bits. */
function prepareBf16(cs: Case, seed: number): { p: Prepared; bits: Uint16Array } {
  const r = rng(seed);
  // prepare draws A, then B, then C: round the draws that fill B.
  const pad = cs.pad ?? 0,
    batch = cs.batch ?? 1;
  const nA = (cs.transA ? cs.K : cs.M) * ((cs.transA ? cs.M : cs.K) + pad) * (cs.broadcastA ? 1 : batch);
  const nB = (cs.transB ? cs.N : cs.K) * ((cs.transB ? cs.K : cs.N) + pad) * (cs.broadcastB ? 1 : batch);
  let drawn = 0;
  const p = prepare(cs, () => {
    const x = r() * 2 - 1,
      inB = drawn >= nA && drawn < nA + nB;
    drawn++;
    if (!inB) return x;
    one[0] = x;
    return bf16ToF32(f32ToBf16(one, oneBits), one)[0];
  });
  assert.equal(p.b.length, nB, `prepareBf16: B has ${p.b.length} elements, expected ${nB}`);
  const bits = f32ToBf16(p.b);
  return { p, bits };
}

/** Copies the operands in (B as f32 or bf16 bits), runs the kernel and returns C. */
function runWith(rt: KernelRuntime, p: Prepared, b: Float32Array | Uint16Array, kernel: Kernel): Float32Array {
  const pa = rt.malloc(p.a.length * 4),
    pb = rt.malloc(b.length * b.BYTES_PER_ELEMENT),
    pc = rt.malloc(p.c0.length * 4);
  const heap = rt.heap();
  heap.f32.set(p.a, pa >> 2);
  if (b instanceof Uint16Array) new Uint16Array(heap.u8.buffer, pb, b.length).set(b);
  else heap.f32.set(b, pb >> 2);
  heap.f32.set(p.c0, pc >> 2);
  kernel(rt, { a: pa, b: pb, c: pc, ...p.layout });
  const got = rt.heap().f32.slice(pc >> 2, (pc >> 2) + p.c0.length);
  rt.free(pa);
  rt.free(pb);
  rt.free(pc);
  return got;
}

/** C of the bf16 kernel equals C of the f32 kernel on the widened B, bit for bit (and is close to the truth). */
function checkBitwise(rt: KernelRuntime, cs: Case, seed: number, f32: Kernel, bf16: Kernel, where: string): void {
  const { p, bits } = prepareBf16(cs, seed);
  const want = runWith(rt, p, p.b, f32);
  const got = runWith(rt, p, bits, bf16);
  const at = `${where} ${p.where}`;
  assertClose(want, p, `f32 matmul on the widened B, ${at}`);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) {
      assert.fail(
        `bf16 matmul ${at}: C[${i}] = ${got[i]} but the f32 matmul of the widened B gives ${want[i]} ` +
          '(the bf16 B must be widened exactly, bits << 16, and summed as the f32 path sums)',
      );
    }
  }
}

/** Odd sizes, every transpose, few and many rows, padded strides, batches: the shared case list. */
function cases(): Case[] {
  const out: Case[] = [];
  const sizes = [1, 3, 7, 17, 33, 65];
  let i = 0;
  for (const M of sizes)
    for (const N of sizes)
      for (const K of [1, 5, 31, 70]) {
        const [transA, transB] = TRANS[i % 4];
        out.push({ M, N, K, transA, transB, accumulate: ((i >> 2) & 1) as 0 | 1, pad: i % 3 === 0 ? 3 : 0 });
        i++;
      }
  for (const [transA, transB] of TRANS) {
    // few rows: dot products (transB, M <= 2) and B read in place (M <= 16)
    out.push({ M: 2, N: 37, K: 131, transA, transB, accumulate: 1 });
    out.push({ M: 13, N: 45, K: 67, transA, transB, accumulate: 0, pad: 1 });
    // beyond one cache block of K, rows and columns
    out.push({ M: 141, N: 37, K: 530, transA, transB, accumulate: 1 });
    out.push({ M: 9, N: 2100, K: 259, transA, transB, accumulate: 0 });
    // batches: own B with strides, shared B, shared A
    out.push({ M: 7, N: 33, K: 20, batch: 3, transA, transB, accumulate: 1, pad: 2 });
    out.push({ M: 45, N: 19, K: 65, batch: 5, broadcastB: true, transA, transB, accumulate: 0 });
    out.push({ M: 31, N: 57, K: 29, batch: 4, broadcastA: true, transA, transB, accumulate: 1 });
    out.push({ M: 1, N: 5, K: 3, batch: 9, transA, transB, accumulate: 0 });
  }
  out.push({ M: 5, N: 9, K: 0, transA: 0, transB: 1, accumulate: 0 });
  out.push({ M: 5, N: 9, K: 0, transA: 1, transB: 0, accumulate: 1 });
  const r = rng(91);
  for (let s = 0; s < 30; s++) {
    const dim = () => 1 + Math.floor(r() ** 2 * 200);
    const [transA, transB] = TRANS[Math.floor(r() * 4)];
    out.push({
      M: dim(),
      N: dim(),
      K: dim(),
      transA,
      transB,
      accumulate: r() < 0.5 ? 1 : 0,
      batch: 1 + Math.floor(r() * 3),
      broadcastB: r() < 0.3,
      pad: r() < 0.3 ? 1 + Math.floor(r() * 4) : 0,
    });
  }
  return out;
}

describe('WebAssembly matmul with a bf16 B equals the f32 matmul of the widened B', () => {
  const rts: KernelRuntime[] = [];
  before(async () => {
    for (const relaxed of [true, false]) {
      for (const threads of [1, 2]) rts.push(await KernelRuntime.create({ threads, relaxed }));
    }
  });
  after(async () => {
    for (const rt of rts) await rt.close();
  });

  it('odd shapes, transposes, strides, batches, accumulation (threads split even tiny products)', () => {
    const all = cases();
    for (const rt of rts) {
      all.forEach((cs, i) =>
        checkBitwise(
          rt,
          cs,
          100 + i,
          (r, p) => matmulF32(r, p, 0),
          (r, p) => matmulBf16B(r, p, 0),
          `wasm relaxed=${rt.relaxed} threads=${rt.threads}`,
        ),
      );
    }
  });

  it('with the default split (small products on one thread)', () => {
    const rt = rts[1];
    cases().forEach((cs, i) => checkBitwise(rt, cs, 700 + i, matmulF32, matmulBf16B, 'wasm default split'));
  });

  it('bounds count 2-byte elements: a bf16 B may end at the last byte, not past it', () => {
    const rt = rts[0],
      end = rt.heap().u8.length;
    const c = rt.malloc(4 * 6),
      a = rt.malloc(4 * 8);
    const base = { a, c, M: 2, N: 3, K: 4, transA: 0, transB: 0 } as const;
    // 12 bf16 elements = 24 bytes: as f32 this B would run 24 bytes past the end.
    assert.doesNotThrow(() => matmulBf16B(rt, { ...base, b: end - 24 }));
    assert.throws(() => matmulBf16B(rt, { ...base, b: end - 22 }), /matmulBf16B: B spans bytes .* memory has/);
    assert.throws(() => matmulBf16B(rt, { ...base, b: 3 }), /matmulBf16B: B spans bytes \[3,/);
    rt.free(a);
    rt.free(c);
  });
});

describe('native matmul with a bf16 B equals the f32 matmul of the widened B', { skip: skipNative }, () => {
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

  it('odd shapes, transposes, strides, batches, accumulation, on every micro-kernel', () => {
    const all = cases();
    for (const kernel of kernels) {
      assert.ok((addon as NativeAddon).select(kernel), `select(${kernel})`);
      for (const rt of rts) {
        all.forEach((cs, i) =>
          checkBitwise(rt, cs, 100 + i, nativeMatmul, nativeMatmulBf16B, `native ${kernel} threads=${rt.threads}`),
        );
      }
    }
  });

  it('products the threads share (packed B over several K blocks and column super-blocks)', () => {
    const rt = rts[1];
    let seed = 3000;
    for (const [transA, transB] of TRANS) {
      checkBitwise(
        rt,
        { M: 300, N: 4200, K: 70, transA, transB, accumulate: 1 },
        seed++,
        nativeMatmul,
        nativeMatmulBf16B,
        'native',
      );
      checkBitwise(
        rt,
        { M: 97, N: 301, K: 1100, transA, transB, accumulate: 0, pad: 3 },
        seed++,
        nativeMatmul,
        nativeMatmulBf16B,
        'native',
      );
      checkBitwise(
        rt,
        { M: 64, N: 130, K: 300, batch: 3, transA, transB, accumulate: 1 },
        seed++,
        nativeMatmul,
        nativeMatmulBf16B,
        'native',
      );
    }
  });

  it('bounds count 2-byte elements: a bf16 B may end at the last byte, not past it, and be 2-byte aligned', () => {
    const rt = rts[0],
      end = rt.heap().u8.length;
    const c = rt.malloc(4 * 6),
      a = rt.malloc(4 * 8);
    const base = { a, c, M: 2, N: 3, K: 4, transA: 0, transB: 0 } as const;
    assert.doesNotThrow(() => nativeMatmulBf16B(rt, { ...base, b: end - 24 }));
    assert.doesNotThrow(() => nativeMatmulBf16B(rt, { ...base, b: end - 26 }));
    assert.throws(() => nativeMatmulBf16B(rt, { ...base, b: end - 22 }), /b at byte .* past the memory/);
    assert.throws(() => nativeMatmulBf16B(rt, { ...base, b: 3 }), /b at byte 3 .*misaligned/);
    assert.throws(() => nativeMatmul(rt, { ...base, b: end - 24 }), /b at byte .* past the memory/);
    rt.free(a);
    rt.free(c);
  });
});
