// The native kernels with operands where they lie (src/backend/cpu/native.ts `Operand`): a byte
// offset into the runtime's memory, or a Uint8Array of the operand's own bytes (a tensor the pager
// moved out). (a) The memory-bound kernels (adamw, sumsq, affine, embedding, its bf16 table and
// its gradient) equal the WebAssembly kernels bit for bit, on odd lengths and tails, on 1 and 2
// threads, in both wasm builds (relaxed SIMD: `madd` fused; plain: not), with every instruction
// set this CPU runs. (b) matmul (nn / nt / tn, f32 and bf16 B, batches), attention forward and
// backward and every new kernel give the same bits with host operands, all or mixed, as with
// offsets. (c) A host operand that is too short or misaligned, overlapping operands and bad ids
// fail with errors that name them. Skips, loudly, when the addon is not built.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as fast from '../../src/backend/cpu/fast/index.js';
import {
  loadNative,
  nativeAdamw,
  nativeAffine,
  nativeAttention,
  nativeAttentionGrad,
  nativeEmbedding,
  nativeEmbeddingGrad,
  nativeLoadError,
  nativeMatmul,
  nativeMatmulBf16B,
  nativeSumsq,
  type NativeAddon,
  type Operand,
} from '../../src/backend/cpu/native.js';
import type { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { allRuntimes, closeRuntimes, randn, rng, type Rt } from './helpers.js';
import { makeInputs, type Case as AttentionCase } from './attention-cases.js';

const addon = await loadNative();
const skip = addon === null ? `native addon not built: ${nativeLoadError}` : false;
if (skip) console.error(`\n*** SKIPPING test/kernels/native-host.test: ${skip} ***\n`);

/** Puts floats (or raw bytes) into the runtime's memory; returns the byte offset. */
function put(rt: KernelRuntime, data: Float32Array | Uint8Array): number {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const at = rt.malloc(Math.max(bytes.length, 4));
  rt.heap().u8.set(bytes, at);
  return at;
}

/** A copy of `bytes` bytes of the memory at `at`, as a host operand (an ordinary, unshared Uint8Array). */
function hostCopy(rt: KernelRuntime, at: number, bytes: number): Uint8Array {
  return rt.heap().u8.slice(at, at + bytes);
}

/** The bytes of an operand after a call, wherever it lies. */
function bytesOf(rt: KernelRuntime, x: Operand, bytes: number): Uint8Array {
  return typeof x === 'number' ? rt.heap().u8.slice(x, x + bytes) : x.slice(0, bytes);
}

/** Asserts equal bits; the message names the first differing float32 (or byte) and where. */
function assertSameBits(got: Uint8Array, want: Uint8Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: ${got.length} bytes vs ${want.length}`);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length >> 2),
    w = new Uint32Array(want.buffer, want.byteOffset, want.length >> 2);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) {
      const f = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0];
      assert.fail(
        `${what}: float ${i} is ${f(g[i])} (0x${g[i].toString(16)}), wasm has ${f(w[i])} (0x${w[i].toString(16)})`,
      );
    }
  }
  for (let i = g.length * 4; i < got.length; i++) assert.equal(got[i], want[i], `${what}: byte ${i}`);
}

const floats = (r: () => number, n: number, scale = 1) => Float32Array.from(randn(r, n, scale));
const bytes = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/** Where the operands of a call lie: every one in the memory, every one in a host array, or alternating. */
const PLACES = ['heap', 'host', 'mixed'] as const;
type Place = (typeof PLACES)[number];

/**
 * Places operand `i` of a call: its initial bytes go into the memory (an offset), or into a host
 * Uint8Array ('host', and odd i for 'mixed').
 */
function place(rt: KernelRuntime, where: Place, i: number, data: Uint8Array): Operand {
  if (where === 'host' || (where === 'mixed' && i % 2 === 1)) return data.slice();
  return put(rt, data);
}

// Odd lengths around vector widths, the elementwise block (65536) and sumsq's chunk (65536).
const LENGTHS = [1, 3, 7, 17, 64, 1001, 65536 + 37, 200_003];

describe('native memory-bound kernels equal the WebAssembly kernels bit for bit', { skip }, () => {
  let rts: Rt[] = [];
  let isas: string[] = [];
  const native = addon as NativeAddon;
  before(async () => {
    rts = await allRuntimes();
    isas = native.info().available.split(',');
    if (!rts.some(({ rt }) => rt.relaxed)) console.error('native-host.test: relaxed-SIMD build unavailable here');
  });
  after(async () => {
    native.select('auto');
    await closeRuntimes();
  });

  /** Runs `body` for every instruction set, runtime (1, 2 threads; relaxed, plain) and operand placement. */
  function each(body: (rt: KernelRuntime, where: Place, label: string) => void): void {
    for (const isa of isas) {
      assert.ok(native.select(isa), `select(${isa})`);
      for (const { rt, label } of rts) for (const where of PLACES) body(rt, where, `${isa}, ${label}, ${where}`);
    }
    native.select('auto');
  }

  const HYPER = [
    { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, t: 3 },
    { lr: 0.3, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0, t: 1 },
  ];

  it('adamw', () => {
    let seed = 1;
    const fusedMatters = { relaxed: 0, plain: 0 };
    each((rt, where, label) => {
      for (const n of LENGTHS) {
        for (const h of HYPER) {
          const r = rng(seed++);
          const init = [floats(r, n), floats(r, n, 0.1), floats(r, n, 0.01), floats(r, n, 1e-3).map((x) => x * x)];
          const bc1 = 1 - h.beta1 ** h.t,
            bc2 = 1 - h.beta2 ** h.t;
          const w = init.map((x) => put(rt, x));
          fast.adamw(rt, w[0], w[1], w[2], w[3], n, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, bc1, bc2);
          const ops = init.map((x, i) => place(rt, where, i, bytes(x)));
          nativeAdamw(rt, ops[0], ops[1], ops[2], ops[3], n, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, bc1, bc2);
          for (const [i, name] of [
            [0, 'p'],
            [2, 'm'],
            [3, 'v'],
          ] as const) {
            const want = bytesOf(rt, w[i], 4 * n);
            assertSameBits(bytesOf(rt, ops[i], 4 * n), want, `adamw ${name} n=${n} lr=${h.lr} (${label})`);
          }
          // The wrong `fused` flag must show (else this test could not catch it): count differences.
          if (n >= 1001 && where === 'heap') {
            const again = init.map((x) => put(rt, x));
            native.adamw(rt.heap().u8, rt.threads, again[0], again[1], again[2], again[3], n, h.lr, h.beta1, h.beta2,
              h.eps, h.weightDecay, bc1, bc2, rt.relaxed ? 0 : 1); // prettier-ignore
            const a = new Uint32Array(bytesOf(rt, again[0], 4 * n).buffer),
              b = new Uint32Array(bytesOf(rt, w[0], 4 * n).buffer);
            if (a.some((x, i) => x !== b[i])) fusedMatters[rt.relaxed ? 'relaxed' : 'plain']++;
            for (const x of again) rt.free(x);
          }
          for (const x of [...w, ...ops]) if (typeof x === 'number') rt.free(x);
        }
      }
    });
    assert.ok(
      fusedMatters.plain > 0,
      'adamw: fused = 1 never changed a bit of the plain build (the test would not see it)',
    );
    if (rts.some(({ rt }) => rt.relaxed)) assert.ok(fusedMatters.relaxed > 0, 'adamw: fused = 0 never changed a bit');
  });

  it('sumsq: the float64 total of the chunk partials, in chunk order', () => {
    let seed = 100;
    each((rt, where, label) => {
      // Groups of four whole chunks are summed together (stream.cc): 4, 9 and 8 + 1 tail chunks.
      for (const n of [...LENGTHS, 3 * 65536, 3 * 65536 + 8, 4 * 65536, 9 * 65536, 8 * 65536 + 5]) {
        const x = floats(rng(seed++), n, 3);
        const at = put(rt, x);
        const chunks = fast.sumsqChunks(n),
          parts = rt.malloc(8 * chunks);
        fast.sumsq(rt, at, n, parts);
        let want = 0;
        for (const p of rt.heap().f64.subarray(parts / 8, parts / 8 + chunks)) want += p;
        const got = nativeSumsq(rt, place(rt, where, 1, bytes(x)), n);
        assert.ok(Object.is(got, want), `sumsq n=${n} (${label}): ${got} vs wasm ${want}`);
        rt.free(at);
        rt.free(parts);
      }
      assert.equal(nativeSumsq(rt, 0, 0), 0);
    });
  });

  it('affine, out of place and in place', () => {
    let seed = 200;
    each((rt, where, label) => {
      for (const n of LENGTHS) {
        const x = floats(rng(seed++), n, 10);
        const [scale, shift] = [1.7, -0.3]; // neither is a float32: both are rounded as the wasm call rounds them
        const at = put(rt, x),
          out = rt.malloc(4 * n);
        fast.affine(rt, at, out, scale, shift, n);
        const want = bytesOf(rt, out, 4 * n);
        const src = place(rt, where, 0, bytes(x)),
          dst = place(rt, where, 1, new Uint8Array(4 * n));
        nativeAffine(rt, src, dst, scale, shift, n);
        assertSameBits(bytesOf(rt, dst, 4 * n), want, `affine n=${n} (${label})`);
        const same = place(rt, where, 0, bytes(x));
        nativeAffine(rt, same, same, scale, shift, n);
        assertSameBits(bytesOf(rt, same, 4 * n), want, `affine in place n=${n} (${label})`);
        for (const p of [at, out, src, dst, same]) if (typeof p === 'number') rt.free(p);
      }
    });
  });

  const SHAPES = [
    { N: 1, D: 1, V: 1 },
    { N: 13, D: 7, V: 5 },
    { N: 300, D: 33, V: 41 },
    { N: 70, D: 896, V: 120 },
    { N: 2100, D: 130, V: 17 },
  ];

  it('embedding (float32 and bfloat16 tables)', () => {
    let seed = 300;
    each((rt, where, label) => {
      for (const { N, D, V } of SHAPES) {
        const r = rng(seed++);
        const ids = Int32Array.from({ length: N }, () => Math.floor(r() * V));
        const idBytes = new Uint8Array(ids.buffer);
        for (const bf16 of [0, 1] as const) {
          const table = bf16
            ? new Uint8Array(Uint16Array.from({ length: V * D }, () => Math.floor(r() * 65536)).buffer)
            : bytes(floats(r, V * D));
          const w = put(rt, table),
            pi = put(rt, idBytes),
            out = rt.malloc(4 * N * D);
          (bf16 ? fast.embeddingBf16 : fast.embedding)(rt, w, pi, out, N, D, V);
          const want = bytesOf(rt, out, 4 * N * D);
          const ops = [table, idBytes, new Uint8Array(4 * N * D)].map((x, i) => place(rt, where, i, x));
          nativeEmbedding(rt, ops[0], ops[1], ops[2], N, D, V, bf16);
          assertSameBits(bytesOf(rt, ops[2], 4 * N * D), want, `embedding bf16=${bf16} ${N}x${D} V=${V} (${label})`);
          for (const p of [w, pi, out, ...ops]) if (typeof p === 'number') rt.free(p);
        }
      }
    });
  });

  it('embeddingGrad (repeated ids accumulate in row order)', () => {
    let seed = 400;
    each((rt, where, label) => {
      for (const { N, D, V } of SHAPES) {
        const r = rng(seed++);
        const ids = Int32Array.from({ length: N }, () => Math.floor(r() * V));
        const dy = floats(r, N * D),
          dw0 = floats(r, V * D, 0.01); // a non-zero start: the sum's first term is not exact
        const pdy = put(rt, dy),
          pi = put(rt, new Uint8Array(ids.buffer)),
          pdw = put(rt, dw0);
        fast.embeddingGrad(rt, pdy, pi, pdw, N, D, V);
        const want = bytesOf(rt, pdw, 4 * V * D);
        const ops = [bytes(dy), new Uint8Array(ids.buffer), bytes(dw0)].map((x, i) => place(rt, where, i, x));
        nativeEmbeddingGrad(rt, ops[0], ops[1], ops[2], N, D, V);
        assertSameBits(bytesOf(rt, ops[2], 4 * V * D), want, `embeddingGrad ${N}x${D} V=${V} (${label})`);
        for (const p of [pdy, pi, pdw, ...ops]) if (typeof p === 'number') rt.free(p);
      }
    });
  });
});

describe('native matmul and attention: host operands give the bits of heap operands', { skip }, () => {
  let rt: KernelRuntime;
  before(async () => {
    rt = (await allRuntimes())[1].rt; // 2 threads
  });
  after(closeRuntimes);

  it('matmul nn / nt / tn, f32 and bf16 B, batches with broadcast', () => {
    const r = rng(500);
    for (const [transA, transB] of [
      [0, 0],
      [0, 1],
      [1, 0],
    ] as const) {
      for (const bf16 of [false, true]) {
        for (const { M, N, K, batch, strideB } of [
          { M: 37, N: 45, K: 300, batch: 1, strideB: undefined },
          { M: 9, N: 70, K: 33, batch: 3, strideB: 0 },
        ]) {
          const nB = K * N * (strideB === 0 ? 1 : batch);
          const a = bytes(floats(r, M * K * batch)),
            c0 = bytes(floats(r, M * N * batch));
          const b = bf16
            ? new Uint8Array(Uint16Array.from({ length: nB }, () => 0x3c00 + Math.floor(r() * 0x800)).buffer)
            : bytes(floats(r, nB));
          const kernel = bf16 ? nativeMatmulBf16B : nativeMatmul;
          const layout = { M, N, K, transA, transB, batch, strideB, accumulate: 1 as const };
          let want: Uint8Array | null = null;
          for (const where of PLACES) {
            const [pa, pb, pc] = [a, b, c0].map((x, i) => place(rt, where, i, x));
            kernel(rt, { a: pa, b: pb, c: pc, ...layout });
            const got = bytesOf(rt, pc, c0.length);
            const what = `matmul trans=${transA}${transB} bf16=${bf16} ${M}x${N}x${K} batch=${batch} ${where}`;
            if (want === null) want = got;
            else assertSameBits(got, want, what);
            for (const p of [pa, pb, pc]) if (typeof p === 'number') rt.free(p);
          }
        }
      }
    }
  });

  it('attention forward and backward, with a padding mask', () => {
    const c: AttentionCase = {
      B: 2,
      T: 19,
      S: 23,
      H: 4,
      Hkv: 2,
      Dh: 24,
      causal: true,
      window: 0,
      softcap: 0,
      pad: [0, 5],
    };
    const x = makeInputs(c, 9);
    const wantFwd: Record<string, Uint8Array> = {},
      wantBwd: Record<string, Uint8Array> = {};
    const names = ['q', 'k', 'v', 'mask', 'out', 'lse', 'dout', 'dq', 'dk', 'dv'] as const;
    const nq = x.q.length * 4,
      nk = x.k.length * 4;
    const sizes: Record<string, number> = { q: nq, k: nk, v: nk, mask: 4 * c.B * c.S, out: nq };
    Object.assign(sizes, { lse: 4 * c.B * c.H * c.T, dout: nq, dq: nq, dk: nk, dv: nk });
    const inputs: Record<string, Uint8Array> = {
      q: bytes(Float32Array.from(x.q)),
      k: bytes(Float32Array.from(x.k)),
      v: bytes(Float32Array.from(x.v)),
      mask: bytes(Float32Array.from(x.mask!)),
      dout: bytes(Float32Array.from(x.dout)),
    };
    const dims = { B: c.B, T: c.T, S: c.S, H: c.H, Hkv: c.Hkv, Dh: c.Dh, scale: x.scale, causal: c.causal };
    for (const where of PLACES) {
      const ops: Record<string, Operand> = {};
      names.forEach((name, i) => {
        ops[name] = place(rt, where, i, inputs[name] ?? new Uint8Array(sizes[name]));
      });
      const o = ops as Record<(typeof names)[number], Operand>;
      nativeAttention(rt, { ...o, ...dims });
      nativeAttentionGrad(rt, { ...o, ...dims });
      for (const name of ['out', 'lse']) {
        const got = bytesOf(rt, o[name as 'out'], sizes[name]);
        if (where === 'heap') wantFwd[name] = got;
        else assertSameBits(got, wantFwd[name], `attention ${name} ${where}`);
      }
      for (const name of ['dq', 'dk', 'dv']) {
        const got = bytesOf(rt, o[name as 'dq'], sizes[name]);
        if (where === 'heap') wantBwd[name] = got;
        else assertSameBits(got, wantBwd[name], `attentionGrad ${name} ${where}`);
      }
      for (const q of Object.values(ops)) if (typeof q === 'number') rt.free(q);
    }
  });
});

describe('native host operands: errors name the operand', { skip }, () => {
  let rt: KernelRuntime;
  before(async () => {
    rt = (await allRuntimes())[0].rt;
  });
  after(closeRuntimes);

  it('a too-short or misaligned host array, a number expected, overlapping operands, bad ids', () => {
    const base = { M: 2, N: 3, K: 4, transA: 0, transB: 0 } as const;
    const a = new Uint8Array(32),
      b = new Uint8Array(48),
      c = new Uint8Array(24);
    assert.doesNotThrow(() => nativeMatmul(rt, { ...base, a, b, c }));
    assert.throws(
      () => nativeMatmul(rt, { ...base, a, b: new Uint8Array(44), c }),
      /matmul: b, a Uint8Array of 44 bytes .*shorter than the 48 bytes it needs/,
    );
    assert.throws(
      () => nativeMatmul(rt, { ...base, a: new Uint8Array(new ArrayBuffer(40), 2, 32), b, c }),
      /matmul: a, a Uint8Array of 32 bytes .*misaligned/,
    );
    const n = 10,
      h = () => new Uint8Array(4 * n);
    assert.throws(
      () => nativeAdamw(rt, h(), h(), h(), new Uint8Array(36), n, 1e-3, 0.9, 0.999, 1e-8, 0, 0.1, 0.001),
      /adamw: v, a Uint8Array of 36 bytes/,
    );
    const p = rt.malloc(4 * n + 8);
    assert.throws(
      () => nativeAdamw(rt, p, p + 4, h(), h(), n, 1e-3, 0.9, 0.999, 1e-8, 0, 0.1, 0.001),
      /adamw: p and g overlap/,
    );
    assert.throws(() => nativeAffine(rt, p, p + 4, 2, 1, n), /affine: x and out overlap \(they may only be the same/);
    assert.throws(() => nativeSumsq(rt, new Uint8Array(39), n), /sumsq: x, a Uint8Array of 39 bytes/);
    assert.throws(
      () => (addon as NativeAddon).sumsq(rt.heap().u8, 1, p, new Uint8Array(4) as unknown as number, 65536),
      /sumsq: n must be a number, not a Uint8Array/,
    );
    const ids = new Uint8Array(Int32Array.from([0, 2, 1, 5, 0]).buffer);
    assert.throws(
      () => nativeEmbedding(rt, new Uint8Array(4 * 5 * 3), ids, new Uint8Array(4 * 5 * 3), 5, 3, 5, 0),
      (e: Error) => e instanceof RangeError && /embedding: ids\[3\] = 5 is outside \[0, V = 5\)/.test(e.message),
    );
    const neg = new Uint8Array(Int32Array.from([0, -1]).buffer);
    assert.throws(
      () => nativeEmbeddingGrad(rt, new Uint8Array(4 * 2 * 3), neg, new Uint8Array(4 * 5 * 3), 2, 3, 5),
      /embeddingGrad: ids\[1\] = -1 is outside \[0, V = 5\)/,
    );
    assert.throws(
      () => nativeEmbedding(rt, new Uint8Array(4 * 5 * 3), ids.subarray(0, 16), new Uint8Array(60), 5, 3, 5, 0),
      /embedding: ids, a Uint8Array of 16 bytes/,
    );
    rt.free(p);
  });
});
