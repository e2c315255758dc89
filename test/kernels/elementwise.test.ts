// Strided and elementwise kernels (binary, where, affine, cast, copy_strided, reduce): the
// WebAssembly kernels against the references on random broadcast/permuted views, four runtimes.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as ref from '../../src/backend/ref/elementwise.js';
import { copyStrided as refCopy } from '../../src/backend/ref/copy.js';
import { reduce as refReduce, type ReduceOp } from '../../src/backend/ref/reduce.js';
import * as fast from '../../src/backend/cpu/fast/elementwise.js';
import { copyStrided } from '../../src/backend/cpu/fast/copy.js';
import { reduce } from '../../src/backend/cpu/fast/reduce.js';
import { collapse, contiguousStrides, planStrided } from '../../src/backend/cpu/fast/strided.js';
import { allRuntimes, assertClose, closeRuntimes, f32, Mem, randInt, randn, rng } from './helpers.js';

after(closeRuntimes);

const prod = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** An operand of `shape` broadcast where `bcast[d]` (its own dim is 1 there, stride 0). */
function operand(shape: number[], bcast: boolean[]): { size: number; strides: number[] } {
  const own = shape.map((s, d) => (bcast[d] ? 1 : s));
  const strides = contiguousStrides(own).map((s, d) => (bcast[d] ? 0 : s));
  return { size: prod(own), strides };
}

/** Shapes for the broadcast tests (bcast: a, b, cond): sizes 1, 7, 33 in every position, plus long rows. */
function shapes(): { shape: number[]; bcast: boolean[][] }[] {
  const rand = rng(5);
  const out: { shape: number[]; bcast: boolean[][] }[] = [
    { shape: [1], bcast: [[false], [false], [false]] },
    { shape: [7], bcast: [[false], [true], [false]] },
    { shape: [33], bcast: [[true], [false], [true]] },
    { shape: [100003], bcast: [[false], [false], [false]] },
    { shape: [100003], bcast: [[false], [true], [false]] },
    {
      shape: [3, 40000],
      bcast: [
        [false, false],
        [true, false],
        [false, true],
      ],
    },
    {
      shape: [40000, 3],
      bcast: [
        [false, false],
        [false, true],
        [true, false],
      ],
    },
  ];
  for (let k = 0; k < 12; k++) {
    const nd = randInt(rand, 2, 5);
    const shape = Array.from({ length: nd }, () => [1, 7, 33, 2, 5][randInt(rand, 0, 5)]);
    out.push({ shape, bcast: [0, 1, 2].map(() => shape.map(() => rand() < 0.3)) });
  }
  return out;
}

test('collapse merges contiguous dims and planStrided cuts long rows', () => {
  assert.deepEqual(
    collapse(
      [2, 3, 4],
      [
        [12, 4, 1],
        [0, 0, 0],
      ],
    ),
    { shape: [24], strides: [[1], [0]] },
  );
  assert.deepEqual(
    collapse(
      [2, 1, 4],
      [
        [4, 4, 1],
        [1, 9, 2],
      ],
    ),
    {
      shape: [2, 4],
      strides: [
        [4, 1],
        [1, 2],
      ],
    },
  );
  assert.deepEqual(collapse([1, 1], [[1, 1]]), { shape: [1], strides: [[1]] });
  const plan = planStrided([100003], [[1], [1]], 2);
  assert.equal(plan.length, 2);
  assert.equal(prod(plan[0].shape) + prod(plan[1].shape), 100003);
  assert.deepEqual(
    planStrided(
      [3, 40000],
      [
        [40000, 1],
        [0, 1],
      ],
      2,
    )[0].shape,
    [3, 25, 1600],
  );
});

test('wasm binary matches the reference for every op on broadcast views', async () => {
  const runtimes = await allRuntimes();
  const rand = rng(1);
  for (const { shape, bcast } of shapes()) {
    const A = operand(shape, bcast[0]),
      B = operand(shape, bcast[1]),
      n = prod(shape);
    for (const op of Object.keys(ref.BINARY_OPS) as ref.BinaryOp[]) {
      // integers give ties for eq/ge; pow gets a positive base
      let a = f32(randn(rand, A.size, 2)),
        b = f32(randn(rand, B.size, 2));
      if (['gt', 'ge', 'eq'].includes(op)) {
        a = a.map(Math.round);
        b = b.map(Math.round);
      }
      if (op === 'pow') a = f32(a.map((v) => Math.abs(v) + 0.1));
      const meta = [...shape, ...A.strides, ...B.strides];
      const want = new Float64Array(n);
      ref.binary(op, a, b, want, shape.length, meta);
      for (const { rt, label } of runtimes) {
        const mem = new Mem(rt);
        const po = mem.zeros(n, NaN);
        fast.binary(rt, op, mem.f32(a), mem.f32(b), po, shape.length, meta);
        // +, -, *, / of float32 inputs rounded once to float32 are exact (no double-rounding issue)
        assertClose(mem.read(po, n), f32(want), `binary ${op} [${shape}] (${label})`, op === 'pow' ? 2e-7 : 0, 0);
        mem.free();
      }
    }
  }
});

test('wasm binary on a transposed operand', async () => {
  const runtimes = await allRuntimes();
  const r = 33,
    c = 7,
    rand = rng(2);
  const a = f32(randn(rand, r * c)),
    b = f32(randn(rand, r * c));
  const meta = [r, c, 1, r, c, 1]; // a read as its transpose
  const want = new Float64Array(r * c);
  ref.binary('sub', a, b, want, 2, meta);
  for (const { rt, label } of runtimes) {
    const mem = new Mem(rt);
    const po = mem.zeros(r * c);
    fast.binary(rt, 'sub', mem.f32(a), mem.f32(b), po, 2, meta);
    assertClose(mem.read(po, r * c), f32(want), `binary transposed (${label})`, 0, 0);
    mem.free();
  }
});

test('wasm where matches the reference (NaN condition counts as true)', async () => {
  const runtimes = await allRuntimes();
  const rand = rng(3);
  for (const { shape, bcast } of shapes()) {
    const C = operand(shape, bcast[2]),
      A = operand(shape, bcast[0]),
      B = operand(shape, bcast[1]),
      n = prod(shape);
    const cond = Float64Array.from({ length: C.size }, () => {
      const u = rand();
      return u < 0.4 ? 0 : u < 0.45 ? NaN : u < 0.5 ? -0 : 1;
    });
    const a = f32(randn(rand, A.size)),
      b = f32(randn(rand, B.size));
    const meta = [...shape, ...C.strides, ...A.strides, ...B.strides];
    const want = new Float64Array(n);
    ref.where(cond, a, b, want, shape.length, meta);
    for (const { rt, label } of runtimes) {
      const mem = new Mem(rt);
      const po = mem.zeros(n, NaN);
      fast.where(rt, mem.f32(cond), mem.f32(a), mem.f32(b), po, shape.length, meta);
      assertClose(mem.read(po, n), want, `where [${shape}] (${label})`, 0, 0);
      mem.free();
    }
  }
});

test('wasm affine and cast match the reference', async () => {
  const runtimes = await allRuntimes();
  for (const n of [1, 7, 33, 100003]) {
    const x = f32(randn(rng(n), n, 1000));
    x[0] = NaN;
    if (n > 5) {
      x[1] = 3e9;
      x[2] = -3e9;
      x[3] = 2.9;
      x[4] = -2.9;
    }
    const ints = Int32Array.from(x, (v) => (Number.isNaN(v) ? 7 : v | 0));
    const want = new Float64Array(n),
      wantI = new Int32Array(n),
      wantF = new Float64Array(n);
    ref.affine(x, want, 0.37, -1.5, n);
    ref.cast(x, wantI, n, 1);
    ref.cast(ints, wantF, n, 0);
    for (const { rt, label } of runtimes) {
      const mem = new Mem(rt, 4);
      const px = mem.f32(x),
        po = mem.zeros(n),
        pi = mem.zeros(n),
        pf = mem.zeros(n);
      fast.affine(rt, px, po, 0.37, -1.5, n);
      fast.cast(rt, px, pi, n, 1);
      fast.cast(rt, mem.i32(ints), pf, n, 0);
      assertClose(mem.read(po, n), want, `affine n=${n} (${label})`, 2e-7, 1e-6);
      assert.deepEqual(mem.readI32(pi, n), wantI, `cast f32->i32 n=${n} (${label})`);
      assertClose(mem.read(pf, n), wantF, `cast i32->f32 n=${n} (${label})`, 6e-8, 0);
      mem.free();
    }
  }
});

test('wasm copy_strided: permute, slice, broadcast, concat; 1, 2, 4 and 8-byte elements', async () => {
  const runtimes = await allRuntimes();
  const [B, T, H, Dh] = [2, 33, 7, 5];
  const cases: { what: string; srcLen: number; dstLen: number; meta: number[]; dstOff?: number }[] = [
    // [B, T, H, Dh] -> [B, H, T, Dh]
    {
      what: 'permute',
      srcLen: B * T * H * Dh,
      dstLen: B * T * H * Dh,
      meta: [B, H, T, Dh, T * H * Dh, Dh, H * Dh, 1, H * T * Dh, T * Dh, Dh, 1],
    },
    // columns 3..10 of a [33, 17] matrix
    { what: 'slice', srcLen: 33 * 17, dstLen: 33 * 7, meta: [33, 7, 17, 1, 7, 1] },
    // [7] -> [33, 7]
    { what: 'broadcast', srcLen: 7, dstLen: 33 * 7, meta: [33, 7, 0, 1, 7, 1] },
    // a [7, 33] block into columns 33.. of a [7, 66] matrix
    { what: 'concat', srcLen: 7 * 33, dstLen: 7 * 66, meta: [7, 33, 33, 1, 66, 1], dstOff: 33 },
    { what: 'transpose', srcLen: 33 * 40, dstLen: 33 * 40, meta: [40, 33, 1, 40, 33, 1] },
    { what: 'long', srcLen: 100003, dstLen: 100003, meta: [100003, 1, 1] },
    { what: 'single', srcLen: 1, dstLen: 1, meta: [1, 1, 1] },
  ];
  const rand = rng(4);
  for (const c of cases) {
    const ndim = c.meta.length / 3;
    for (const elemBytes of [4, 2, 1, 8]) {
      const Arr = (
        { 1: Uint8Array, 2: Uint16Array, 4: Float32Array, 8: Float64Array } as unknown as Record<
          number,
          Float32ArrayConstructor
        >
      )[elemBytes];
      const src = Arr.from({ length: c.srcLen }, () =>
        elemBytes === 4 || elemBytes === 8 ? randn(rand, 1)[0] : randInt(rand, 0, 250),
      );
      const want = new Arr(c.dstLen);
      const off = c.dstOff ?? 0;
      refCopy(src, want.subarray(off), ndim, c.meta, elemBytes);
      for (const { rt, label } of runtimes) {
        const ps = rt.malloc(src.byteLength),
          pd = rt.malloc(want.byteLength);
        new Uint8Array(rt.memory.buffer, ps, src.byteLength).set(new Uint8Array(src.buffer));
        new Uint8Array(rt.memory.buffer, pd, want.byteLength).fill(0);
        copyStrided(rt, ps, pd + off * elemBytes, ndim, c.meta, elemBytes);
        const got = new Arr(rt.memory.buffer.slice(pd, pd + want.byteLength));
        assert.deepEqual(got, want, `copy_strided ${c.what} elemBytes ${elemBytes} (${label})`);
        rt.free(ps);
        rt.free(pd);
      }
    }
  }
});

test('wasm reduce (sum, max) matches the reference', async () => {
  const runtimes = await allRuntimes();
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [7, 33, 1],
    [33, 7, 1],
    [1, 7, 33],
    [7, 1, 33],
    [33, 33, 7],
    [2, 3, 100],
    [1, 1000, 768],
    [500, 1000, 1],
    [3, 5, 40000],
  ];
  const rand = rng(6);
  for (const [outer, red, inner] of shapes) {
    const x = f32(randn(rand, outer * red * inner));
    for (const op of ['sum', 'max'] as ReduceOp[]) {
      const want = new Float64Array(outer * inner);
      refReduce(op, x, want, outer, red, inner);
      for (const { rt, label } of runtimes) {
        const mem = new Mem(rt);
        const po = mem.zeros(outer * inner, NaN);
        reduce(rt, op, mem.f32(x), po, outer, red, inner);
        // float32 accumulation: error grows with the number of terms
        assertClose(
          mem.read(po, outer * inner),
          want,
          `reduce ${op} [${outer}, ${red}, ${inner}] (${label})`,
          op === 'sum' ? 1e-5 : 0,
          op === 'sum' ? 1e-6 * red : 0,
        );
        mem.free();
      }
    }
  }
});
