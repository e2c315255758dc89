// What the attention kernel tests share (attention.test.ts for the WebAssembly kernels,
// native-attention.test.ts for the native ones): the cases, their inputs, the float64 reference,
// the error measure and one forward + backward run of a fused kernel pair on a runtime's memory.
import assert from 'node:assert/strict';
import { attention, attentionGrad } from '../../src/backend/ref/attention.js';
import type { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import type { AttentionGradArgs } from '../../src/backend/cpu/fast/attention.js';
import { rng } from './helpers.js';

export interface Case {
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  Dh: number;
  causal: boolean;
  window: number;
  softcap: number;
  /** Left padding per batch row (keys [0, pad) masked); null for no mask. S pads a whole row. */
  pad: number[] | null;
  /** Range of q and k entries (default 2); large values make peaked softmax rows with underflowing terms. */
  amp?: number;
}

export function label(c: Case): string {
  const opts = [
    c.causal ? 'causal' : '',
    c.window ? `window ${c.window}` : '',
    c.softcap ? `softcap ${c.softcap}` : '',
    c.pad ? `pad [${c.pad}]` : '',
    c.amp ? `amp ${c.amp}` : '',
  ];
  return [`B${c.B} T${c.T} S${c.S} H${c.H}/${c.Hkv} Dh${c.Dh}`, ...opts].filter((o) => o !== '').join(' ');
}

/** Values in [-amp, amp), rounded to float32 so that f32 and f64 runs see the same inputs. */
function randomArray(n: number, rand: () => number, amp: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.fround((2 * rand() - 1) * amp);
  return x;
}

export interface Inputs {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  mask: Float64Array | null;
  dout: Float64Array;
  scale: number;
}

export function makeInputs(c: Case, seed: number, amp = c.amp ?? 2): Inputs {
  const rand = rng(seed);
  const mask = c.pad === null ? null : new Float64Array(c.B * c.S);
  if (mask !== null)
    for (let b = 0; b < c.B; b++) for (let j = 0; j < c.S; j++) mask[b * c.S + j] = j < c.pad![b] ? 0 : 1;
  return {
    q: randomArray(c.B * c.T * c.H * c.Dh, rand, amp),
    k: randomArray(c.B * c.S * c.Hkv * c.Dh, rand, amp),
    v: randomArray(c.B * c.S * c.Hkv * c.Dh, rand, 1),
    dout: randomArray(c.B * c.T * c.H * c.Dh, rand, 1),
    mask,
    scale: 1 / Math.sqrt(c.Dh),
  };
}

export function refForward(c: Case, x: Inputs): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(c.B * c.T * c.H * c.Dh),
    lse = new Float64Array(c.B * c.H * c.T);
  attention(x.q, x.k, x.v, x.mask, out, lse, c.B, c.T, c.S, c.H, c.Hkv, c.Dh, x.scale, c.causal, c.window, c.softcap);
  return { out, lse };
}

export function refBackward(c: Case, x: Inputs, out: Float64Array, lse: Float64Array) {
  const dq = new Float64Array(x.q.length),
    dk = new Float64Array(x.k.length),
    dv = new Float64Array(x.v.length);
  attentionGrad(
    x.q,
    x.k,
    x.v,
    x.mask,
    out,
    lse,
    x.dout,
    dq,
    dk,
    dv,
    c.B,
    c.T,
    c.S,
    c.H,
    c.Hkv,
    c.Dh,
    x.scale,
    c.causal,
    c.window,
    c.softcap,
  );
  return { dq, dk, dv };
}

/** Largest |a - b| over the arrays, relative to max(1, max |b|); -inf must match -inf exactly. */
export function relErr(name: string, a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, `${name}: lengths differ`);
  let err = 0,
    big = 1;
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

/** Bound on |scale q . k| over all pairs: scale times the largest q row norm times the largest k row norm. */
export function scoreBound(c: Case, x: Inputs): number {
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

type Kernel = (rt: KernelRuntime, args: AttentionGradArgs) => void;

/**
 * Forward then backward on the runtime's memory, outputs poisoned with NaN first (every element must be written);
 * float64 copies of the results.
 */
export function runFused(rt: KernelRuntime, c: Case, x: Inputs, forward: Kernel, backward: Kernel) {
  const nq = x.q.length,
    nk = x.k.length,
    nl = c.B * c.H * c.T;
  const alloc = (n: number) => rt.malloc(4 * Math.max(n, 1));
  const p = {
    q: alloc(nq),
    k: alloc(nk),
    v: alloc(nk),
    mask: x.mask ? alloc(x.mask.length) : 0,
    out: alloc(nq),
    lse: alloc(nl),
    dout: alloc(nq),
    dq: alloc(nq),
    dk: alloc(nk),
    dv: alloc(nk),
  };
  const f32 = rt.heap().f32;
  f32.set(x.q, p.q / 4);
  f32.set(x.k, p.k / 4);
  f32.set(x.v, p.v / 4);
  f32.set(x.dout, p.dout / 4);
  if (x.mask) f32.set(x.mask, p.mask / 4);
  for (const [ptr, n] of [
    [p.out, nq],
    [p.lse, nl],
    [p.dq, nq],
    [p.dk, nk],
    [p.dv, nk],
  ])
    f32.fill(NaN, ptr / 4, ptr / 4 + n);
  const args = {
    ...p,
    B: c.B,
    T: c.T,
    S: c.S,
    H: c.H,
    Hkv: c.Hkv,
    Dh: c.Dh,
    scale: x.scale,
    causal: c.causal,
    window: c.window,
    softcap: c.softcap,
  };
  forward(rt, args);
  backward(rt, args);
  const read = (ptr: number, n: number) => Float64Array.from(rt.heap().f32.subarray(ptr / 4, ptr / 4 + n));
  const res = {
    out: read(p.out, nq),
    lse: read(p.lse, nl),
    dq: read(p.dq, nq),
    dk: read(p.dk, nk),
    dv: read(p.dv, nk),
  };
  for (const ptr of Object.values(p)) if (ptr !== 0) rt.free(ptr);
  return res;
}

/**
 * The cases both fused-kernel tests run: grouped-query heads, T < S and T > S, windows, soft-caps, padded rows, peaked
 * rows.
 */
export const kernelCases: Case[] = [
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
];

/** `n` random cases (seed 99): sizes up to 300 keys, with or without causality, windows, soft-caps and padding. */
export function randomCases(n: number): Case[] {
  const rand = rng(99),
    cases: Case[] = [];
  for (let i = 0; i < n; i++) {
    const Hkv = 1 + Math.floor(rand() * 2),
      S = 1 + Math.floor(rand() * 300);
    cases.push({
      B: 1 + Math.floor(rand() * 2),
      T: 1 + Math.floor(rand() * S),
      S,
      H: Hkv * (1 + Math.floor(rand() * 3)),
      Hkv,
      Dh: [16, 64, 80, 24][Math.floor(rand() * 4)],
      causal: rand() < 0.8,
      window: rand() < 0.3 ? 1 + Math.floor(rand() * 40) : 0,
      softcap: rand() < 0.3 ? 4 : 0,
      pad: rand() < 0.3 ? [Math.floor(rand() * S), 0] : null,
    });
  }
  return cases;
}
