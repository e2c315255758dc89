// LayerNorm and RMSNorm: reference dx/dw/db against finite differences (float64), the
// WebAssembly kernels against the references (with and without weight/bias, four runtimes).
import { after, test } from 'node:test';
import * as ref from '../../src/backend/ref/norm.js';
import * as fast from '../../src/backend/cpu/fast/norm.js';
import { allRuntimes, assertClose, closeRuntimes, f32, Mem, randn, rng } from './helpers.js';
import { checkGrad } from './gradcheck.js';

after(closeRuntimes);

const EPS = 1e-5;

test('reference layernorm grads (dx, dw, db) match finite differences (float64)', () => {
  const rand = rng(31);
  for (const [N, D] of [
    [1, 1],
    [2, 7],
    [3, 5],
  ] as [number, number][]) {
    const x = randn(rand, N * D),
      w = randn(rand, D),
      b = randn(rand, D),
      dy = randn(rand, N * D);
    const mean = new Float64Array(N),
      rstd = new Float64Array(N),
      out = new Float64Array(N * D);
    ref.layernorm(x, w, b, out, mean, rstd, N, D, EPS);
    const fwd = (xv: Float64Array, wv: Float64Array | null, bv: Float64Array | null): Float64Array => {
      const o = new Float64Array(N * D);
      ref.layernorm(xv, wv, bv, o, null, null, N, D, EPS);
      return o;
    };
    for (const withW of [true, false]) {
      const dx = new Float64Array(N * D);
      ref.layernormGrad(x, withW ? w : null, mean, rstd, dy, dx, N, D);
      checkGrad(`layernormGrad [${N}, ${D}] w=${withW}`, (v) => fwd(v, withW ? w : null, b), x, dy, dx);
    }
    const dw = new Float64Array(D),
      db = new Float64Array(D);
    ref.layernormWgrad(x, mean, rstd, dy, dw, db, N, D);
    checkGrad(`layernormWgrad dw [${N}, ${D}]`, (v) => fwd(x, v, b), w, dy, dw);
    checkGrad(`layernormWgrad db [${N}, ${D}]`, (v) => fwd(x, w, v), b, dy, db);
  }
});

test('reference rmsnorm grads (dx, dw) match finite differences (float64), offset 0 and 1', () => {
  const rand = rng(32);
  for (const [N, D] of [
    [1, 1],
    [2, 7],
    [3, 5],
  ] as [number, number][]) {
    for (const offset of [0, 1]) {
      const x = randn(rand, N * D),
        w = randn(rand, D),
        dy = randn(rand, N * D);
      const rstd = new Float64Array(N),
        out = new Float64Array(N * D);
      ref.rmsnorm(x, w, out, rstd, N, D, EPS, offset);
      const fwd = (xv: Float64Array, wv: Float64Array | null): Float64Array => {
        const o = new Float64Array(N * D);
        ref.rmsnorm(xv, wv, o, null, N, D, EPS, offset);
        return o;
      };
      for (const withW of [true, false]) {
        const dx = new Float64Array(N * D);
        ref.rmsnormGrad(x, withW ? w : null, rstd, dy, dx, N, D, offset);
        checkGrad(`rmsnormGrad [${N}, ${D}] offset ${offset} w=${withW}`, (v) => fwd(v, withW ? w : null), x, dy, dx);
      }
      const dw = new Float64Array(D);
      ref.rmsnormWgrad(x, rstd, dy, dw, N, D);
      checkGrad(`rmsnormWgrad [${N}, ${D}] offset ${offset}`, (v) => fwd(x, v), w, dy, dw);
    }
  }
});

const SHAPES: [number, number][] = [
  [1, 1],
  [7, 7],
  [33, 33],
  [1, 33],
  [33, 7],
  [7, 1],
  [1024, 768],
  [3, 2100],
];

test('wasm layernorm, layernorm_grad and layernorm_wgrad match the reference', async () => {
  const runtimes = await allRuntimes();
  const rand = rng(33);
  for (const [N, D] of SHAPES) {
    const x = f32(randn(rand, N * D, 2).map((v) => v + 3)),
      w = f32(randn(rand, D)),
      b = f32(randn(rand, D)),
      dy = f32(randn(rand, N * D));
    for (const [wv, bv] of [
      [w, b],
      [null, null],
      [w, null],
    ] as [Float64Array | null, Float64Array | null][]) {
      const out = new Float64Array(N * D),
        mean = new Float64Array(N),
        rstd = new Float64Array(N);
      ref.layernorm(x, wv, bv, out, mean, rstd, N, D, EPS);
      const meanF = f32(mean),
        rstdF = f32(rstd);
      const dx = new Float64Array(N * D),
        dw = new Float64Array(D),
        db = new Float64Array(D);
      ref.layernormGrad(x, wv, meanF, rstdF, dy, dx, N, D);
      ref.layernormWgrad(x, meanF, rstdF, dy, dw, db, N, D);
      for (const { rt, label } of runtimes) {
        const mem = new Mem(rt, D === 7 ? 4 : 0);
        const px = mem.f32(x),
          pw = wv ? mem.f32(wv) : 0,
          pb = bv ? mem.f32(bv) : 0,
          pdy = mem.f32(dy);
        const po = mem.zeros(N * D, NaN),
          pm = mem.zeros(N, NaN),
          pr = mem.zeros(N, NaN);
        fast.layernorm(rt, px, pw, pb, po, pm, pr, N, D, EPS);
        const at = `[${N}, ${D}] w=${!!wv} b=${!!bv} (${label})`;
        assertClose(mem.read(po, N * D), out, `layernorm ${at}`, 1e-5, 4e-6);
        assertClose(mem.read(pm, N), mean, `layernorm mean ${at}`, 1e-6, 1e-6);
        assertClose(mem.read(pr, N), rstd, `layernorm rstd ${at}`, 4e-6, 0);
        const pdx = mem.zeros(N * D, NaN),
          pdw = mem.zeros(D, NaN),
          pdb = mem.zeros(D, NaN);
        const pmf = mem.f32(meanF),
          prf = mem.f32(rstdF);
        fast.layernormGrad(rt, px, pw, pmf, prf, pdy, pdx, N, D);
        fast.layernormWgrad(rt, px, pmf, prf, pdy, pdw, bv ? pdb : 0, N, D);
        assertClose(mem.read(pdx, N * D), dx, `layernorm_grad ${at}`, 1e-5, 1e-5);
        assertClose(mem.read(pdw, D), dw, `layernorm_wgrad dw ${at}`, 1e-5, 2e-6 * Math.sqrt(N));
        if (bv) assertClose(mem.read(pdb, D), db, `layernorm_wgrad db ${at}`, 1e-5, 2e-6 * Math.sqrt(N));
        mem.free();
      }
    }
  }
});

test('wasm rmsnorm, rmsnorm_grad and rmsnorm_wgrad match the reference', async () => {
  const runtimes = await allRuntimes();
  const rand = rng(34);
  for (const [N, D] of SHAPES) {
    const x = f32(randn(rand, N * D, 2)),
      w = f32(randn(rand, D, 0.3)),
      dy = f32(randn(rand, N * D));
    for (const [wv, offset] of [
      [w, 0],
      [w, 1],
      [null, 0],
    ] as [Float64Array | null, number][]) {
      const out = new Float64Array(N * D),
        rstd = new Float64Array(N);
      ref.rmsnorm(x, wv, out, rstd, N, D, EPS, offset);
      const rstdF = f32(rstd);
      const dx = new Float64Array(N * D),
        dw = new Float64Array(D);
      ref.rmsnormGrad(x, wv, rstdF, dy, dx, N, D, offset);
      ref.rmsnormWgrad(x, rstdF, dy, dw, N, D);
      for (const { rt, label } of runtimes) {
        const mem = new Mem(rt, D === 33 ? 4 : 0);
        const px = mem.f32(x),
          pw = wv ? mem.f32(wv) : 0,
          pdy = mem.f32(dy);
        const po = mem.zeros(N * D, NaN),
          pr = mem.zeros(N, NaN);
        fast.rmsnorm(rt, px, pw, po, pr, N, D, EPS, offset);
        const at = `[${N}, ${D}] w=${!!wv} offset ${offset} (${label})`;
        assertClose(mem.read(po, N * D), out, `rmsnorm ${at}`, 1e-5, 2e-6);
        assertClose(mem.read(pr, N), rstd, `rmsnorm rstd ${at}`, 4e-6, 0);
        const pdx = mem.zeros(N * D, NaN),
          pdw = mem.zeros(D, NaN),
          prf = mem.f32(rstdF);
        fast.rmsnormGrad(rt, px, pw, prf, pdy, pdx, N, D, offset);
        fast.rmsnormWgrad(rt, px, prf, pdy, pdw, N, D);
        assertClose(mem.read(pdx, N * D), dx, `rmsnorm_grad ${at}`, 1e-5, 1e-5);
        assertClose(mem.read(pdw, D), dw, `rmsnorm_wgrad ${at}`, 1e-5, 2e-6 * Math.sqrt(N));
        mem.free();
      }
    }
  }
});
