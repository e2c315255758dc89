// Fused attention kernels: (a) the float64 reference against a naive attention built from an
// explicit [T, S] score matrix; (b) the reference backward against central finite differences of
// the reference forward; (c) the WebAssembly kernels (f32; 1 and 2 threads; relaxed and plain
// SIMD builds) against the reference.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { attention, attentionGrad } from '../../src/backend/ref/attention.js';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { attentionF32, attentionGradF32 } from '../../src/backend/cpu/fast/attention.js';

interface Case {
  B: number; T: number; S: number; H: number; Hkv: number; Dh: number;
  causal: boolean; window: number; softcap: number;
  /** Left padding per batch row (keys [0, pad) masked); null for no mask. S pads a whole row. */
  pad: number[] | null;
  /** Range of q and k entries (default 2); large values make peaked softmax rows with underflowing terms. */
  amp?: number;
}

function label(c: Case): string {
  const opts = [c.causal ? 'causal' : '', c.window ? `window ${c.window}` : '', c.softcap ? `softcap ${c.softcap}` : '',
    c.pad ? `pad [${c.pad}]` : '', c.amp ? `amp ${c.amp}` : ''];
  return [`B${c.B} T${c.T} S${c.S} H${c.H}/${c.Hkv} Dh${c.Dh}`, ...opts].filter((o) => o !== '').join(' ');
}

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values in [-amp, amp), rounded to float32 so that f32 and f64 runs see the same inputs. */
function randomArray(n: number, rand: () => number, amp: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.fround((2 * rand() - 1) * amp);
  return x;
}

interface Inputs {
  q: Float64Array; k: Float64Array; v: Float64Array; mask: Float64Array | null; dout: Float64Array; scale: number;
}

function makeInputs(c: Case, seed: number, amp = c.amp ?? 2): Inputs {
  const rand = rng(seed);
  const mask = c.pad === null ? null : new Float64Array(c.B * c.S);
  if (mask !== null) for (let b = 0; b < c.B; b++) for (let j = 0; j < c.S; j++) mask[b * c.S + j] = j < c.pad![b] ? 0 : 1;
  return {
    q: randomArray(c.B * c.T * c.H * c.Dh, rand, amp),
    k: randomArray(c.B * c.S * c.Hkv * c.Dh, rand, amp),
    v: randomArray(c.B * c.S * c.Hkv * c.Dh, rand, 1),
    dout: randomArray(c.B * c.T * c.H * c.Dh, rand, 1),
    mask,
    scale: 1 / Math.sqrt(c.Dh),
  };
}

/**
 * Naive attention as transformers' eager path writes it: repeat the kv heads, form the whole
 * [T, S] score matrix, soft-cap, mask (causal with the query offset S - T, sliding window,
 * padding), then a max-subtracted softmax per row; rows without keys give 0 and -inf.
 */
function naiveAttention(c: Case, x: Inputs): { out: Float64Array; lse: Float64Array } {
  const { B, T, S, H, Hkv, Dh } = c, nRep = H / Hkv;
  const out = new Float64Array(B * T * H * Dh), lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvHead = Math.floor(h / nRep);
      const K = (j: number, d: number) => x.k[((b * S + j) * Hkv + kvHead) * Dh + d];
      const V = (j: number, d: number) => x.v[((b * S + j) * Hkv + kvHead) * Dh + d];
      const Q = (i: number, d: number) => x.q[((b * T + i) * H + h) * Dh + d];
      const scores: number[][] = [], allowed: boolean[][] = [];
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

function refForward(c: Case, x: Inputs): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(c.B * c.T * c.H * c.Dh), lse = new Float64Array(c.B * c.H * c.T);
  attention(x.q, x.k, x.v, x.mask, out, lse, c.B, c.T, c.S, c.H, c.Hkv, c.Dh, x.scale, c.causal, c.window, c.softcap);
  return { out, lse };
}

function refBackward(c: Case, x: Inputs, out: Float64Array, lse: Float64Array) {
  const dq = new Float64Array(x.q.length), dk = new Float64Array(x.k.length), dv = new Float64Array(x.v.length);
  attentionGrad(x.q, x.k, x.v, x.mask, out, lse, x.dout, dq, dk, dv,
    c.B, c.T, c.S, c.H, c.Hkv, c.Dh, x.scale, c.causal, c.window, c.softcap);
  return { dq, dk, dv };
}

/** Largest |a - b| over the arrays, relative to max(1, max |b|); -inf must match -inf exactly. */
function relErr(name: string, a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `${name}: lengths differ`);
  let err = 0, big = 1;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === -Infinity || a[i] === -Infinity) {
      if (a[i] !== b[i]) assert.fail(`${name}[${i}]: got ${a[i]}, expected ${b[i]}`);
      continue;
    }
    if (!Number.isFinite(a[i])) assert.fail(`${name}[${i}] = ${a[i]} is not finite`);
    err = Math.max(err, Math.abs(a[i] - b[i]));
    big = Math.max(big, Math.abs(b[i]));
  }
  return err / big;
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
      const want = naiveAttention(c, x), got = refForward(c, x);
      assert.ok(relErr('out', got.out, want.out) < 1e-12, 'out differs');
      assert.ok(relErr('lse', got.lse, want.lse) < 1e-12, 'lse differs');
    });
  }
  test('a query without any allowed key gets out 0 and lse -inf', () => {
    const c: Case = { ...baseCase, T: 6, S: 6, pad: [2, 0] };
    const got = refForward(c, makeInputs(c, 3));
    for (const i of [0, 1]) {
      assert.equal(got.lse[0 * c.T + i], -Infinity);
      for (let d = 0; d < c.Dh; d++) assert.equal(got.out[(i * c.H) * c.Dh + d], 0);
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
    const Hkv = pick([1, 3]), S = pick([1, 3, 7]);
    cases.push({
      B: pick([1, 3]), T: pick([1, 3, 7]), S, H: Hkv * pick([1, 3]), Hkv, Dh: pick([1, 3, 7]),
      causal: rand() < 0.7, window: pick([0, 0, 3]), softcap: pick([0, 0.8, 3]), pad: rand() < 0.5 ? null : [1, 0, 2],
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
      for (const [name, param, grad] of [['q', x.q, grads.dq], ['k', x.k, grads.dk], ['v', x.v, grads.dv]] as const) {
        for (let i = 0; i < param.length; i++) {
          const keep = param[i];
          param[i] = keep + eps;
          const up = loss();
          param[i] = keep - eps;
          const down = loss();
          param[i] = keep;
          const fd = (up - down) / (2 * eps);
          assert.ok(Math.abs(fd - grad[i]) < 1e-7 * (1 + Math.abs(fd)),
            `d${name}[${i}]: analytic ${grad[i]}, finite difference ${fd}`);
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
        runtimes.push({ name: `${relaxed ? (rt.relaxed ? 'relaxed' : 'relaxed unavailable, plain') : 'plain'} x${threads}`, rt });
      }
    }
  });
  after(async () => {
    for (const { rt } of runtimes) await rt.close();
  });

  const cases: Case[] = [
    { B: 4, T: 256, S: 256, H: 4, Hkv: 2, Dh: 64, causal: true, window: 0, softcap: 0, pad: null },
    { B: 2, T: 300, S: 300, H: 4, Hkv: 2, Dh: 80, causal: true, window: 0, softcap: 0, pad: [37, 0] },
    { B: 1, T: 97, S: 283, H: 4, Hkv: 1, Dh: 16, causal: true, window: 0, softcap: 0, pad: null },
    { B: 2, T: 130, S: 130, H: 2, Hkv: 2, Dh: 64, causal: true, window: 50, softcap: 0, pad: [0, 3] },
    { B: 1, T: 200, S: 200, H: 4, Hkv: 2, Dh: 16, causal: true, window: 0, softcap: 5, pad: null },
    { B: 2, T: 77, S: 150, H: 4, Hkv: 2, Dh: 80, causal: false, window: 0, softcap: 0, pad: [20, 150] },
    { B: 1, T: 61, S: 61, H: 3, Hkv: 1, Dh: 13, causal: true, window: 9, softcap: 2, pad: [5] },
    { B: 2, T: 70, S: 33, H: 2, Hkv: 1, Dh: 7, causal: true, window: 0, softcap: 0, pad: null }, // T > S
    { B: 3, T: 1, S: 45, H: 4, Hkv: 4, Dh: 64, causal: true, window: 0, softcap: 0, pad: [0, 4, 45] },
    { B: 1, T: 5, S: 5, H: 1, Hkv: 1, Dh: 3, causal: true, window: 2, softcap: 0, pad: null },
    { B: 1, T: 40, S: 40, H: 2, Hkv: 1, Dh: 32, causal: true, window: 0, softcap: 0, pad: null, amp: 12 },
    { B: 1, T: 40, S: 40, H: 2, Hkv: 1, Dh: 32, causal: true, window: 0, softcap: 30, pad: null, amp: 12 },
    // Long keys: the scratch holds only 5 query rows per block forward, 2 backward.
    { B: 1, T: 8, S: 150_000, H: 1, Hkv: 1, Dh: 4, causal: true, window: 0, softcap: 0, pad: [1000] },
  ];
  const rand = rng(99);
  for (let n = 0; n < 4; n++) {
    const Hkv = 1 + Math.floor(rand() * 2), S = 1 + Math.floor(rand() * 300);
    cases.push({
      B: 1 + Math.floor(rand() * 2), T: 1 + Math.floor(rand() * S), S, H: Hkv * (1 + Math.floor(rand() * 3)), Hkv,
      Dh: [16, 64, 80, 24][Math.floor(rand() * 4)], causal: rand() < 0.8,
      window: rand() < 0.3 ? 1 + Math.floor(rand() * 40) : 0, softcap: rand() < 0.3 ? 4 : 0,
      pad: rand() < 0.3 ? [Math.floor(rand() * S), 0] : null,
    });
  }

  for (const c of cases) {
    test(label(c), () => {
      const x = makeInputs(c, 5);
      const want = refForward(c, x);
      const wantGrad = refBackward(c, x, want.out, want.lse);
      for (const { name, rt } of runtimes) {
        const got = runWasm(rt, c, x);
        const errs = {
          out: relErr('out', got.out, want.out), lse: relErr('lse', got.lse, want.lse),
          dq: relErr('dq', got.dq, wantGrad.dq), dk: relErr('dk', got.dk, wantGrad.dk), dv: relErr('dv', got.dv, wantGrad.dv),
        };
        // f32 rounding of dot products of length Dh and sums over S keys stays well below these;
        // a score s carries an absolute error of about |s| eps, so the bounds grow with the scores.
        const kappa = Math.max(1, scoreBound(c, x) / 32);
        const tol: Record<string, number> = {
          out: 5e-6 * kappa, lse: 5e-6, dq: 2e-5 * kappa, dk: 2e-5 * kappa, dv: 2e-5 * kappa,
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
    assert.throws(() => attentionF32(rt, { ...ptrs, ...sizes, H: 3, Hkv: 2 }), /attentionF32: H = 3 is not a multiple of Hkv = 2/);
    assert.throws(() => attentionF32(rt, { ...ptrs, ...sizes, T: 0 }), /attentionF32: T = 0/);
    assert.throws(() => attentionGradF32(rt, { ...ptrs, ...sizes, S: 400_000 }), /attentionGradF32: S = 400000 keys do not fit/);
  });
});

/** Bound on |scale q . k| over all pairs: scale times the largest q row norm times the largest k row norm. */
function scoreBound(c: Case, x: Inputs): number {
  const maxNorm = (a: Float64Array) => {
    let best = 0;
    for (let r = 0; r < a.length / c.Dh; r++) {
      let n = 0;
      for (let d = 0; d < c.Dh; d++) n += a[r * c.Dh + d] ** 2;
      best = Math.max(best, Math.sqrt(n));
    }
    return best;
  };
  return x.scale * maxNorm(x.q) * maxNorm(x.k);
}

/** Runs forward then backward on the runtime's memory; returns the results as float64 arrays. */
function runWasm(rt: KernelRuntime, c: Case, x: Inputs) {
  const nq = x.q.length, nk = x.k.length, nl = c.B * c.H * c.T;
  const alloc = (n: number) => rt.malloc(4 * Math.max(n, 1));
  const p = {
    q: alloc(nq), k: alloc(nk), v: alloc(nk), mask: x.mask ? alloc(x.mask.length) : 0, out: alloc(nq), lse: alloc(nl),
    dout: alloc(nq), dq: alloc(nq), dk: alloc(nk), dv: alloc(nk),
  };
  const f32 = rt.heap().f32;
  f32.set(x.q, p.q / 4); f32.set(x.k, p.k / 4); f32.set(x.v, p.v / 4); f32.set(x.dout, p.dout / 4);
  if (x.mask) f32.set(x.mask, p.mask / 4);
  // Poison the outputs: every element must be written.
  for (const [ptr, n] of [[p.out, nq], [p.lse, nl], [p.dq, nq], [p.dk, nk], [p.dv, nk]]) f32.fill(NaN, ptr / 4, ptr / 4 + n);
  const args = {
    ...p, B: c.B, T: c.T, S: c.S, H: c.H, Hkv: c.Hkv, Dh: c.Dh, scale: x.scale, causal: c.causal, window: c.window, softcap: c.softcap,
  };
  attentionF32(rt, args);
  attentionGradF32(rt, args);
  const read = (ptr: number, n: number) => Float64Array.from(rt.heap().f32.subarray(ptr / 4, ptr / 4 + n));
  const res = { out: read(p.out, nq), lse: read(p.lse, nl), dq: read(p.dq, nq), dk: read(p.dk, nk), dv: read(p.dv, nk) };
  for (const ptr of Object.values(p)) if (ptr !== 0) rt.free(ptr);
  return res;
}
