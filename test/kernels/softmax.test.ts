// Softmax family: reference grads against finite differences (float64), the WebAssembly kernels
// against the references (four runtimes), target checks and ignore_index.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as ref from '../../src/backend/ref/softmax.js';
import * as fast from '../../src/backend/cpu/fast/softmax.js';
import { allRuntimes, assertClose, closeRuntimes, f32, Mem, randInt, randn, rng } from './helpers.js';
import { checkGrad } from './gradcheck.js';

after(closeRuntimes);

const SHAPES: [number, number][] = [
  [1, 1],
  [7, 7],
  [33, 33],
  [1, 7],
  [7, 33],
  [33, 1],
  [64, 1000],
  [5, 50257],
];

function targets(rand: () => number, N: number, V: number): Int32Array {
  return Int32Array.from({ length: N }, (_, r) => (r % 5 === 3 ? ref.IGNORE_INDEX : randInt(rand, 0, V)));
}

test('reference softmax-family grads match finite differences (float64)', () => {
  const rand = rng(21);
  for (const [N, D] of [
    [1, 1],
    [2, 7],
    [3, 5],
  ] as [number, number][]) {
    const x = randn(rand, N * D, 2),
      w = randn(rand, N * D);
    const y = new Float64Array(N * D),
      dx = new Float64Array(N * D);
    ref.softmax(x, y, N, D);
    ref.softmaxGrad(y, w, dx, N, D);
    checkGrad(
      `softmaxGrad [${N}, ${D}]`,
      (v) => {
        const o = new Float64Array(N * D);
        ref.softmax(v, o, N, D);
        return o;
      },
      x,
      w,
      dx,
    );
    ref.logSoftmax(x, y, N, D);
    ref.logSoftmaxGrad(y, w, dx, N, D);
    checkGrad(
      `logSoftmaxGrad [${N}, ${D}]`,
      (v) => {
        const o = new Float64Array(N * D);
        ref.logSoftmax(v, o, N, D);
        return o;
      },
      x,
      w,
      dx,
    );
    const t = Int32Array.from({ length: N }, (_, r) => (r === 1 ? ref.IGNORE_INDEX : randInt(rand, 0, D)));
    const dy = randn(rand, N);
    ref.logsoftmaxGatherGrad(x, t, dy, dx, N, D);
    checkGrad(
      `logsoftmaxGatherGrad [${N}, ${D}]`,
      (v) => {
        const o = new Float64Array(N);
        ref.logsoftmaxGather(v, t, o, N, D);
        return o;
      },
      x,
      dy,
      dx,
    );
  }
});

test('wasm softmax, log_softmax and their grads match the reference', async () => {
  const runtimes = await allRuntimes();
  const rand = rng(22);
  for (const [N, D] of SHAPES) {
    const x = f32(randn(rand, N * D, 3));
    if (D > 3) x[2] = -Infinity; // a masked logit
    const dy = f32(randn(rand, N * D));
    const y = new Float64Array(N * D),
      ly = new Float64Array(N * D),
      dx = new Float64Array(N * D),
      ldx = new Float64Array(N * D);
    ref.softmax(x, y, N, D);
    ref.logSoftmax(x, ly, N, D);
    const yf = f32(y),
      lyf = f32(ly);
    ref.softmaxGrad(yf, dy, dx, N, D);
    ref.logSoftmaxGrad(lyf, dy, ldx, N, D);
    for (const { rt, label } of runtimes) {
      const mem = new Mem(rt, D === 7 ? 4 : 0);
      const px = mem.f32(x),
        po = mem.zeros(N * D, NaN),
        plo = mem.zeros(N * D, NaN);
      const pdx = mem.zeros(N * D, NaN),
        pldx = mem.zeros(N * D, NaN),
        pdy = mem.f32(dy);
      fast.softmax(rt, px, po, N, D);
      fast.logSoftmax(rt, px, plo, N, D);
      fast.softmaxGrad(rt, mem.f32(yf), pdy, pdx, N, D);
      fast.logSoftmaxGrad(rt, mem.f32(lyf), pdy, pldx, N, D);
      const at = `[${N}, ${D}] (${label})`;
      assertClose(mem.read(po, N * D), y, `softmax ${at}`, 4e-6, 1e-9);
      assertClose(mem.read(plo, N * D), ly, `log_softmax ${at}`, 1e-6, 2e-6);
      assertClose(mem.read(pdx, N * D), dx, `softmax_grad ${at}`, 1e-5, 1e-6);
      assertClose(mem.read(pldx, N * D), ldx, `log_softmax_grad ${at}`, 1e-5, 1e-6 * Math.sqrt(D));
      mem.free();
    }
  }
});

test('wasm logsoftmax_gather and its grad match the reference, with ignore_index', async () => {
  const runtimes = await allRuntimes();
  const rand = rng(23);
  for (const [N, V] of [...SHAPES, [512, 1000]] as [number, number][]) {
    const x = f32(randn(rand, N * V, 4)),
      t = targets(rand, N, V),
      dy = f32(randn(rand, N));
    const want = new Float64Array(N),
      wantDx = new Float64Array(N * V);
    ref.logsoftmaxGather(x, t, want, N, V);
    ref.logsoftmaxGatherGrad(x, t, dy, wantDx, N, V);
    for (let r = 0; r < N; r++) if (t[r] === ref.IGNORE_INDEX) assert.equal(want[r], 0);
    for (const { rt, label } of runtimes) {
      const mem = new Mem(rt, V === 33 ? 4 : 0);
      const px = mem.f32(x),
        pt = mem.i32(t),
        po = mem.zeros(N, NaN),
        pdx = mem.zeros(N * V, NaN);
      fast.logsoftmaxGather(rt, px, pt, po, N, V);
      fast.logsoftmaxGatherGrad(rt, px, pt, mem.f32(dy), pdx, N, V);
      assertClose(mem.read(po, N), want, `logsoftmax_gather [${N}, ${V}] (${label})`, 1e-6, 2e-6);
      assertClose(mem.read(pdx, N * V), wantDx, `logsoftmax_gather_grad [${N}, ${V}] (${label})`, 4e-6, 1e-6);
      mem.free();
    }
  }
});

test('targets outside [0, V) are errors (wasm: index out of range; reference: names id, row and V)', async () => {
  const [N, V] = [3, 5];
  const x = new Float64Array(N * V),
    out = new Float64Array(N),
    dx = new Float64Array(N * V);
  for (const bad of [5, -1, -7]) {
    const t = Int32Array.from([0, bad, 2]);
    assert.throws(
      () => ref.logsoftmaxGather(x, t, out, N, V),
      new RegExp(`target ${bad} at row 1 is outside \\[0, 5\\)`),
    );
    assert.throws(() => ref.logsoftmaxGatherGrad(x, t, new Float64Array(N), dx, N, V), /target .* at row 1/);
    for (const { rt } of await allRuntimes()) {
      const mem = new Mem(rt);
      const px = mem.f32(x),
        pt = mem.i32(t);
      assert.throws(() => fast.logsoftmaxGather(rt, px, pt, mem.zeros(N), N, V), /index out of range/);
      assert.throws(
        () => fast.logsoftmaxGatherGrad(rt, px, pt, mem.zeros(N), mem.zeros(N * V), N, V),
        /index out of range/,
      );
      mem.free();
    }
  }
});
