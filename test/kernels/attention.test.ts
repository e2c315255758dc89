// Fused attention kernels: (a) the float64 reference against a naive attention built from an
// explicit [T, S] score matrix; (b) the reference backward against central finite differences of
// the reference forward; (c) the WebAssembly kernels (f32; 1 and 2 threads; relaxed and plain
// SIMD builds) against the reference.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { attentionF32, attentionGradF32 } from '../../src/backend/cpu/fast/attention.js';
import {
  kernelCases,
  label,
  makeInputs,
  randomCases,
  refBackward,
  refForward,
  relErr,
  runFused,
  scoreBound,
  type Case,
  type Inputs,
} from './attention-cases.js';
import { rng } from './helpers.js';

/**
 * Naive attention as transformers' eager path writes it: repeat the kv heads, form the whole
 * [T, S] score matrix, soft-cap, mask (causal with the query offset S - T, sliding window,
 * padding), then a max-subtracted softmax per row; rows without keys give 0 and -inf.
 */
function naiveAttention(c: Case, x: Inputs): { out: Float64Array; lse: Float64Array } {
  const { B, T, S, H, Hkv, Dh } = c,
    nRep = H / Hkv;
  const out = new Float64Array(B * T * H * Dh),
    lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvHead = Math.floor(h / nRep);
      const K = (j: number, d: number) => x.k[((b * S + j) * Hkv + kvHead) * Dh + d];
      const V = (j: number, d: number) => x.v[((b * S + j) * Hkv + kvHead) * Dh + d];
      const Q = (i: number, d: number) => x.q[((b * T + i) * H + h) * Dh + d];
      const scores: number[][] = [],
        allowed: boolean[][] = [];
      for (let i = 0; i < T; i++) {
        scores.push([]);
        allowed.push([]);
        const pos = S - T + i;
        for (let j = 0; j < S; j++) {
          let s = 0;
          for (let d = 0; d < Dh; d++) s += Q(i, d) * K(j, d);
          s *= x.scale;
          if (c.softcap > 0) s = c.softcap * Math.tanh(s / c.softcap);
          scores[i].push(s);
          let ok = !c.causal || j <= pos;
          if (c.window > 0 && !(pos - j < c.window)) ok = false;
          if (x.mask !== null && x.mask[b * S + j] === 0) ok = false;
          allowed[i].push(ok);
        }
      }
      for (let i = 0; i < T; i++) {
        const kept = scores[i].filter((_, j) => allowed[i][j]);
        const o = ((b * T + i) * H + h) * Dh;
        if (kept.length === 0) {
          lse[(b * H + h) * T + i] = -Infinity;
          continue;
        }
        const m = Math.max(...kept);
        const e = scores[i].map((s, j) => (allowed[i][j] ? Math.exp(s - m) : 0));
        const z = e.reduce((a, b2) => a + b2, 0);
        lse[(b * H + h) * T + i] = m + Math.log(z);
        for (let j = 0; j < S; j++) for (let d = 0; d < Dh; d++) out[o + d] += (e[j] / z) * V(j, d);
      }
    }
  }
  return { out, lse };
}

const baseCase: Case = { B: 2, T: 5, S: 5, H: 4, Hkv: 2, Dh: 6, causal: true, window: 0, softcap: 0, pad: null };

describe('attention reference vs naive attention', () => {
  const cases: Case[] = [
    baseCase,
    { ...baseCase, causal: false },
    { ...baseCase, H: 6, Hkv: 1, T: 3, S: 9 }, // GQA (multi-query), query offset S - T
    { ...baseCase, T: 1, S: 8, H: 2, Hkv: 2 }, // one new token against a KV cache
    { ...baseCase, T: 9, S: 9, window: 3 },
    { ...baseCase, T: 7, S: 11, window: 4, causal: false },
    { ...baseCase, softcap: 1.5 },
    { ...baseCase, T: 6, S: 6, pad: [2, 0] }, // left padding: queries 0, 1 of batch 0 see no key
    { ...baseCase, T: 4, S: 6, pad: [6, 1], causal: false }, // batch 0 fully padded
    { ...baseCase, T: 7, S: 4 }, // T > S, causal: the first queries sit before every key
    { ...baseCase, T: 8, S: 10, H: 4, Hkv: 1, window: 3, softcap: 2, pad: [3, 5] },
  ];
  for (const c of cases) {
    test(label(c), () => {
      const x = makeInputs(c, 7);
      const want = naiveAttention(c, x),
        got = refForward(c, x);
      assert.ok(relErr('out', got.out, want.out) < 1e-12, 'out differs');
      assert.ok(relErr('lse', got.lse, want.lse) < 1e-12, 'lse differs');
    });
  }
  test('a query without any allowed key gets out 0 and lse -inf', () => {
    const c: Case = { ...baseCase, T: 6, S: 6, pad: [2, 0] };
    const got = refForward(c, makeInputs(c, 3));
    for (const i of [0, 1]) {
      assert.equal(got.lse[0 * c.T + i], -Infinity);
      for (let d = 0; d < c.Dh; d++) assert.equal(got.out[i * c.H * c.Dh + d], 0);
    }
  });
});

describe('attention reference backward vs finite differences', () => {
  const rand = rng(2024);
  const pick = <X>(xs: X[]): X => xs[Math.floor(rand() * xs.length)];
  const cases: Case[] = [
    { B: 1, T: 3, S: 7, H: 2, Hkv: 1, Dh: 3, causal: true, window: 0, softcap: 0, pad: null },
    { B: 2, T: 7, S: 7, H: 3, Hkv: 3, Dh: 1, causal: true, window: 3, softcap: 0, pad: [2, 0] },
    { B: 1, T: 1, S: 3, H: 1, Hkv: 1, Dh: 7, causal: true, window: 0, softcap: 2, pad: null },
    { B: 2, T: 3, S: 3, H: 2, Hkv: 2, Dh: 3, causal: false, window: 0, softcap: 1, pad: [3, 1] },
  ];
  for (let n = 0; n < 4; n++) {
    const Hkv = pick([1, 3]),
      S = pick([1, 3, 7]);
    cases.push({
      B: pick([1, 3]),
      T: pick([1, 3, 7]),
      S,
      H: Hkv * pick([1, 3]),
      Hkv,
      Dh: pick([1, 3, 7]),
      causal: rand() < 0.7,
      window: pick([0, 0, 3]),
      softcap: pick([0, 0.8, 3]),
      pad: rand() < 0.5 ? null : [1, 0, 2],
    });
  }
  for (const c of cases) {
    test(label(c), () => {
      const x = makeInputs(c, 11, 1.5);
      // L = sum(dout * out), so dL/dq etc. is what attentionGrad returns for that dout.
      const loss = () => {
        const { out } = refForward(c, x);
        let l = 0;
        for (let i = 0; i < out.length; i++) l += x.dout[i] * out[i];
        return l;
      };
      const { out, lse } = refForward(c, x);
      const grads = refBackward(c, x, out, lse);
      const eps = 1e-5;
      for (const [name, param, grad] of [
        ['q', x.q, grads.dq],
        ['k', x.k, grads.dk],
        ['v', x.v, grads.dv],
      ] as const) {
        for (let i = 0; i < param.length; i++) {
          const keep = param[i];
          param[i] = keep + eps;
          const up = loss();
          param[i] = keep - eps;
          const down = loss();
          param[i] = keep;
          const fd = (up - down) / (2 * eps);
          assert.ok(
            Math.abs(fd - grad[i]) < 1e-7 * (1 + Math.abs(fd)),
            `d${name}[${i}]: analytic ${grad[i]}, finite difference ${fd}`,
          );
        }
      }
    });
  }
});

describe('attention WebAssembly kernels vs reference (f32)', () => {
  const runtimes: { name: string; rt: KernelRuntime }[] = [];
  before(async () => {
    for (const relaxed of [true, false]) {
      for (const threads of [1, 2]) {
        const rt = await KernelRuntime.create({ threads, relaxed });
        runtimes.push({
          name: `${relaxed ? (rt.relaxed ? 'relaxed' : 'relaxed unavailable, plain') : 'plain'} x${threads}`,
          rt,
        });
      }
    }
  });
  after(async () => {
    for (const { rt } of runtimes) await rt.close();
  });

  const cases: Case[] = [
    { B: 4, T: 256, S: 256, H: 4, Hkv: 2, Dh: 64, causal: true, window: 0, softcap: 0, pad: null },
    ...kernelCases,
    // Long keys: the scratch holds only 5 query rows per block forward, 2 backward.
    { B: 1, T: 8, S: 150_000, H: 1, Hkv: 1, Dh: 4, causal: true, window: 0, softcap: 0, pad: [1000] },
    ...randomCases(4),
  ];

  for (const c of cases) {
    test(label(c), () => {
      const x = makeInputs(c, 5);
      const want = refForward(c, x);
      const wantGrad = refBackward(c, x, want.out, want.lse);
      for (const { name, rt } of runtimes) {
        const got = runFused(rt, c, x, attentionF32, attentionGradF32);
        const errs = {
          out: relErr('out', got.out, want.out),
          lse: relErr('lse', got.lse, want.lse),
          dq: relErr('dq', got.dq, wantGrad.dq),
          dk: relErr('dk', got.dk, wantGrad.dk),
          dv: relErr('dv', got.dv, wantGrad.dv),
        };
        // f32 rounding of dot products of length Dh and sums over S keys stays well below these;
        // a score s carries an absolute error of about |s| eps, so the bounds grow with the scores.
        const kappa = Math.max(1, scoreBound(c, x) / 32);
        const tol: Record<string, number> = {
          out: 5e-6 * kappa,
          lse: 5e-6,
          dq: 2e-5 * kappa,
          dk: 2e-5 * kappa,
          dv: 2e-5 * kappa,
        };
        for (const [k, e] of Object.entries(errs)) {
          assert.ok(e < tol[k], `${name}: ${k} relative error ${e.toExponential(2)} (tolerance ${tol[k]})`);
        }
      }
    });
  }

  test('bad sizes are refused with a message', () => {
    const rt = runtimes[0].rt;
    const ptrs = { q: 64, k: 64, v: 64, mask: 0, out: 64, lse: 64, dout: 64, dq: 64, dk: 64, dv: 64 };
    const sizes = { B: 1, T: 1, S: 1, H: 1, Hkv: 1, Dh: 4, scale: 1, causal: true };
    assert.throws(
      () => attentionF32(rt, { ...ptrs, ...sizes, H: 3, Hkv: 2 }),
      /attentionF32: H = 3 is not a multiple of Hkv = 2/,
    );
    assert.throws(() => attentionF32(rt, { ...ptrs, ...sizes, T: 0 }), /attentionF32: T = 0/);
    assert.throws(
      () => attentionGradF32(rt, { ...ptrs, ...sizes, S: 400_000 }),
      /attentionGradF32: S = 400000 keys do not fit/,
    );
  });
});
