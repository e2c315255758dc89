// Unary kernels: the float64 references against known values and finite differences, and the
// WebAssembly kernels against the references (all ops, sizes 1, 7, 33, 100003, four runtimes).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import {
  erf,
  erfc,
  UNARY,
  UNARY_GRAD,
  UNARY_OPS,
  unary as refUnary,
  unaryGrad as refUnaryGrad,
  type UnaryOp,
} from '../../src/backend/ref/unary.js';
import * as fast from '../../src/backend/cpu/fast/unary.js';
import { allRuntimes, assertClose, closeRuntimes, f32, Mem, randn, rng, SIZES } from './helpers.js';
import { checkGrad } from './gradcheck.js';

after(closeRuntimes);

const OPS = Object.keys(UNARY_OPS) as UnaryOp[];
const POSITIVE: UnaryOp[] = ['log', 'sqrt', 'rsqrt'];

/** Inputs in each op's domain: normals times 3, made positive for log and the roots. */
function inputs(op: UnaryOp, n: number, seed: number): Float64Array {
  const x = randn(rng(seed), n, 3);
  return f32(POSITIVE.includes(op) ? x.map((v) => Math.abs(v) + 1e-3) : x);
}

test('erf and erfc (float64) match tabulated values to 1e-15', () => {
  // Abramowitz & Stegun table 7.1 / 30-digit values
  const table: [number, number][] = [
    [0.1, 0.1124629160182848922],
    [0.5, 0.5204998778130465377],
    [1, 0.8427007929497148693],
    [1.5, 0.9661051464753107271],
    [2, 0.9953222650189527342],
    [2.5, 0.9995930479825550411],
    [3, 0.9999779095030014146],
    [4, 0.9999999845827420997],
  ];
  for (const [x, v] of table) {
    assert.ok(Math.abs(erf(x) - v) < 1e-15, `erf(${x}) = ${erf(x)}, expected ${v}`);
    assert.ok(Math.abs(erf(-x) + v) < 1e-15, `erf(${-x})`);
  }
  // erfc deep in the tail keeps relative accuracy: erfc(5) = 1.5374597944280348502e-12, erfc(10) =
  // 2.0884875837625447570e-45
  assert.ok(Math.abs(erfc(5) / 1.5374597944280348502e-12 - 1) < 1e-14, `erfc(5) = ${erfc(5)}`);
  assert.ok(Math.abs(erfc(10) / 2.088487583762544757e-45 - 1) < 1e-14, `erfc(10) = ${erfc(10)}`);
  assert.equal(erf(0), 0);
  assert.equal(erf(Infinity), 1);
  assert.ok(Number.isNaN(erf(NaN)));
  // the series (< 2) and continued fraction (>= 2) meet smoothly: d/dx erf = 2/sqrt(pi) exp(-x^2)
  for (const x of [1.999999, 2.000001]) {
    const d = (erf(x + 1e-6) - erf(x - 1e-6)) / 2e-6;
    assert.ok(Math.abs(d - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x)) < 1e-8, `erf' at ${x}`);
  }
});

test('reference unary grads match finite differences (float64)', () => {
  for (const op of OPS) {
    // stay off the kinks of relu and abs
    const x = inputs(op, 9, 11).map((v) => (Math.abs(v) < 1e-3 ? v + 0.1 : v));
    const w = randn(rng(12), 9);
    const dx = new Float64Array(9);
    refUnaryGrad(op, x, w, dx, 9);
    checkGrad(
      `unaryGrad ${op}`,
      (v) => {
        const y = new Float64Array(9);
        refUnary(op, v, y, 9);
        return y;
      },
      x,
      w,
      dx,
      1e-6,
      1e-6,
    );
  }
});

test('wasm unary and unary_grad match the float64 reference', async () => {
  const runtimes = await allRuntimes();
  for (const n of [...SIZES, 100003]) {
    for (const op of OPS) {
      const x = inputs(op, n, n + 1),
        dy = f32(randn(rng(n + 2), n));
      const want = new Float64Array(n),
        wantDx = new Float64Array(n);
      refUnary(op, x, want, n);
      refUnaryGrad(op, x, dy, wantDx, n);
      for (const { rt, label } of runtimes) {
        const mem = new Mem(rt, n === 7 ? 4 : 0); // one size at addresses that are not 16-byte aligned
        const px = mem.f32(x),
          pdy = mem.f32(dy),
          po = mem.zeros(n, NaN),
          pdx = mem.zeros(n, NaN);
        fast.unary(rt, op, px, po, n);
        fast.unaryGrad(rt, op, px, pdy, pdx, n);
        // 4 ulp, plus an absolute floor for terms that cancel in float32 (gelu and silu grads near their
        // zeros, the gelus far left where float32 rounding of the inner term moves the exp)
        assertClose(mem.read(po, n), want, `unary ${op} n=${n} (${label})`, 5e-7, 1e-6);
        assertClose(mem.read(pdx, n), wantDx, `unary_grad ${op} n=${n} (${label})`, 5e-7, 1e-6);
        mem.free();
      }
    }
  }
});

test('wasm transcendentals are exact at the edges: inf, NaN, 0, huge and tiny inputs', async () => {
  const [{ rt }] = await allRuntimes();
  const x = [
    0,
    -0,
    Infinity,
    -Infinity,
    NaN,
    1e-40,
    -1e-40,
    1e-30,
    100,
    -100,
    1e30,
    -1e30,
    88.72,
    -87.5,
    -103,
    20,
    -20,
  ];
  const mem = new Mem(rt);
  const px = mem.f32(x),
    po = mem.zeros(x.length);
  for (const op of [
    'exp',
    'log',
    'tanh',
    'sigmoid',
    'logsigmoid',
    'softplus',
    'gelu_tanh',
    'gelu_erf',
    'silu',
  ] as UnaryOp[]) {
    fast.unary(rt, op, px, po, x.length);
    const got = mem.read(po, x.length);
    x.forEach((v, i) => {
      const want = Math.fround(UNARY[op](Math.fround(v)));
      // results below the normal range (|y| < 1.2e-38) keep only the precision of float32 denormals
      const ok =
        Object.is(got[i], want) ||
        (Number.isNaN(want) && Number.isNaN(got[i])) ||
        Math.abs(got[i] - want) <= 4e-7 * Math.abs(want) ||
        (Math.abs(want) < 1.2e-38 && Math.abs(got[i] - want) < 1e-40);
      assert.ok(ok, `${op}(${v}) = ${got[i]}, expected ${want}`);
    });
  }
  mem.free();
  assert.equal(UNARY_GRAD.tanh(30), 1 / Math.cosh(30) ** 2);
});

test(
  'assembly/unary.ts and binary.ts are the ones generated ' + 'from the tables of ops (src/backend/elementwise-ops.ts)',
  async () => {
    const { readFileSync } = await import('node:fs');
    const { generatedAssembly } = await import('../../src/backend/cpu/elementwise-codegen.js');
    for (const [name, text] of Object.entries(generatedAssembly())) {
      const committed = readFileSync(new URL(`../../../src/backend/cpu/assembly/${name}`, import.meta.url), 'utf8');
      assert.equal(
        committed,
        text,
        `src/backend/cpu/assembly/${name} is stale: ` +
          '`npm run build` regenerates it from src/backend/elementwise-ops.ts',
      );
    }
  },
);
