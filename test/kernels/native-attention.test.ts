// The native fused attention (src/backend/cpu/native.ts) against the float64 reference kernels
// (src/backend/ref/attention.ts, itself checked against naive attention and finite differences in
// attention.test.ts): grouped-query heads, causal with T < S and T > S, sliding windows,
// soft-capping, padding masks (whole rows padded), head sizes 7 .. 128, long key ranges; on 1 and
// 2 threads and with every instruction set this CPU runs, whose results must all agree bit for bit
// (attention.cc). Skips, loudly, when the addon is not built.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { attention, attentionGrad } from '../../src/backend/ref/attention.js';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { loadNative, nativeAttention, nativeAttentionGrad, nativeLoadError, type NativeAddon } from '../../src/backend/cpu/native.js';
import { rng } from './helpers.js';

interface Case {
  B: number; T: number; S: number; H: number; Hkv: number; Dh: number;
  causal: boolean; window: number; softcap: number;
  /** Left padding per batch row (keys [0, pad) masked); null for no mask. */
  pad: number[] | null;
  /** Range of q and k entries (default 2). */
  amp?: number;
}

const label = (c: Case) => `B${c.B} T${c.T} S${c.S} H${c.H}/${c.Hkv} Dh${c.Dh}${c.causal ? ' causal' : ''}` +
  `${c.window ? ` window ${c.window}` : ''}${c.softcap ? ` softcap ${c.softcap}` : ''}${c.pad ? ` pad [${c.pad}]` : ''}${c.amp ? ` amp ${c.amp}` : ''}`;

const addon = await loadNative();
const skip = addon === null ? `native addon not built: ${nativeLoadError}` : false;
if (skip) console.error(`\n*** SKIPPING test/kernels/native-attention.test: ${skip} ***\n`);

interface Inputs { q: Float64Array; k: Float64Array; v: Float64Array; mask: Float64Array | null; dout: Float64Array; scale: number }

function makeInputs(c: Case, seed: number): Inputs {
  const r = rng(seed), amp = c.amp ?? 2;
  const arr = (n: number, a: number) => Float64Array.from({ length: n }, () => Math.fround((2 * r() - 1) * a));
  const mask = c.pad === null ? null : new Float64Array(c.B * c.S);
  if (mask !== null) for (let b = 0; b < c.B; b++) for (let j = 0; j < c.S; j++) mask[b * c.S + j] = j < c.pad![b] ? 0 : 1;
  const nq = c.B * c.T * c.H * c.Dh, nk = c.B * c.S * c.Hkv * c.Dh;
  return { q: arr(nq, amp), k: arr(nk, amp), v: arr(nk, 1), dout: arr(nq, 1), mask, scale: 1 / Math.sqrt(c.Dh) };
}

/** Largest |a - b| relative to max(1, max |b|); -inf must match exactly, everything else be finite. */
function relErr(name: string, a: ArrayLike<number>, b: ArrayLike<number>): number {
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

/** Bound on |scale q . k|: scale times the largest q row norm times the largest k row norm. */
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

/** Forward then backward in the runtime's memory (outputs poisoned with NaN first); float64 copies. */
function runNative(rt: KernelRuntime, c: Case, x: Inputs) {
  const nq = x.q.length, nk = x.k.length, nl = c.B * c.H * c.T;
  const alloc = (n: number) => rt.malloc(4 * Math.max(n, 1));
  const p = {
    q: alloc(nq), k: alloc(nk), v: alloc(nk), mask: x.mask ? alloc(x.mask.length) : 0, out: alloc(nq), lse: alloc(nl),
    dout: alloc(nq), dq: alloc(nq), dk: alloc(nk), dv: alloc(nk),
  };
  const f32 = rt.heap().f32;
  f32.set(x.q, p.q / 4); f32.set(x.k, p.k / 4); f32.set(x.v, p.v / 4); f32.set(x.dout, p.dout / 4);
  if (x.mask) f32.set(x.mask, p.mask / 4);
  for (const [ptr, n] of [[p.out, nq], [p.lse, nl], [p.dq, nq], [p.dk, nk], [p.dv, nk]]) f32.fill(NaN, ptr / 4, ptr / 4 + n);
  const args = { ...p, B: c.B, T: c.T, S: c.S, H: c.H, Hkv: c.Hkv, Dh: c.Dh, scale: x.scale, causal: c.causal, window: c.window, softcap: c.softcap };
  nativeAttention(rt, args);
  nativeAttentionGrad(rt, args);
  const read = (ptr: number, n: number) => Float32Array.from(rt.heap().f32.subarray(ptr / 4, ptr / 4 + n));
  const res = { out: read(p.out, nq), lse: read(p.lse, nl), dq: read(p.dq, nq), dk: read(p.dk, nk), dv: read(p.dv, nk) };
  for (const ptr of Object.values(p)) if (ptr !== 0) rt.free(ptr);
  return res;
}

const cases: Case[] = [
  { B: 8, T: 128, S: 128, H: 8, Hkv: 8, Dh: 32, causal: true, window: 0, softcap: 0, pad: null }, // the bench's small preset
  { B: 2, T: 128, S: 128, H: 12, Hkv: 12, Dh: 64, causal: true, window: 0, softcap: 0, pad: [0, 17] }, // GPT-2
  { B: 2, T: 300, S: 300, H: 4, Hkv: 2, Dh: 80, causal: true, window: 0, softcap: 0, pad: [37, 0] },
  { B: 1, T: 97, S: 283, H: 4, Hkv: 1, Dh: 16, causal: true, window: 0, softcap: 0, pad: null },
  { B: 1, T: 70, S: 70, H: 2, Hkv: 1, Dh: 128, causal: true, window: 0, softcap: 0, pad: null },
  { B: 2, T: 130, S: 130, H: 2, Hkv: 2, Dh: 64, causal: true, window: 50, softcap: 0, pad: [0, 3] },
  { B: 1, T: 200, S: 200, H: 4, Hkv: 2, Dh: 16, causal: true, window: 0, softcap: 5, pad: null },
  { B: 2, T: 77, S: 150, H: 4, Hkv: 2, Dh: 80, causal: false, window: 0, softcap: 0, pad: [20, 150] },
  { B: 1, T: 61, S: 61, H: 3, Hkv: 1, Dh: 13, causal: true, window: 9, softcap: 2, pad: [5] },
  { B: 2, T: 70, S: 33, H: 2, Hkv: 1, Dh: 7, causal: true, window: 0, softcap: 0, pad: null }, // T > S
  { B: 3, T: 1, S: 45, H: 4, Hkv: 4, Dh: 64, causal: true, window: 0, softcap: 0, pad: [0, 4, 45] },
  { B: 1, T: 5, S: 5, H: 1, Hkv: 1, Dh: 3, causal: true, window: 2, softcap: 0, pad: null },
  { B: 1, T: 40, S: 40, H: 2, Hkv: 1, Dh: 32, causal: true, window: 0, softcap: 0, pad: null, amp: 12 },
  { B: 1, T: 40, S: 40, H: 2, Hkv: 1, Dh: 32, causal: true, window: 0, softcap: 30, pad: null, amp: 12 },
  { B: 1, T: 8, S: 20_000, H: 1, Hkv: 1, Dh: 4, causal: true, window: 0, softcap: 0, pad: [1000] },
];
const r = rng(99);
for (let n = 0; n < 6; n++) {
  const Hkv = 1 + Math.floor(r() * 2), S = 1 + Math.floor(r() * 300);
  cases.push({
    B: 1 + Math.floor(r() * 2), T: 1 + Math.floor(r() * S), S, H: Hkv * (1 + Math.floor(r() * 3)), Hkv,
    Dh: [16, 64, 80, 24][Math.floor(r() * 4)], causal: r() < 0.8,
    window: r() < 0.3 ? 1 + Math.floor(r() * 40) : 0, softcap: r() < 0.3 ? 4 : 0,
    pad: r() < 0.3 ? [Math.floor(r() * S), 0] : null,
  });
}

describe('native attention vs float64 reference', { skip }, () => {
  const rts: KernelRuntime[] = [];
  let isas: string[] = [];
  before(async () => {
    for (const threads of [1, 2]) rts.push(await KernelRuntime.create({ threads }));
    isas = (addon as NativeAddon).info().available.split(',');
  });
  after(async () => {
    (addon as NativeAddon).select('auto');
    for (const rt of rts) await rt.close();
  });

  for (const c of cases) {
    test(label(c), () => {
      const x = makeInputs(c, 5);
      const want = { out: new Float64Array(x.q.length), lse: new Float64Array(c.B * c.H * c.T) };
      attention(x.q, x.k, x.v, x.mask, want.out, want.lse, c.B, c.T, c.S, c.H, c.Hkv, c.Dh, x.scale, c.causal, c.window, c.softcap);
      const grad = { dq: new Float64Array(x.q.length), dk: new Float64Array(x.k.length), dv: new Float64Array(x.k.length) };
      attentionGrad(x.q, x.k, x.v, x.mask, want.out, want.lse, x.dout, grad.dq, grad.dk, grad.dv,
        c.B, c.T, c.S, c.H, c.Hkv, c.Dh, x.scale, c.causal, c.window, c.softcap);
      // The tolerances of the WebAssembly kernels' test: f32 rounding of dot products of length Dh
      // and sums over S keys; a score carries an absolute error of about |s| eps.
      const kappa = Math.max(1, scoreBound(c, x) / 32);
      const tol: Record<string, number> = { out: 5e-6 * kappa, lse: 5e-6, dq: 2e-5 * kappa, dk: 2e-5 * kappa, dv: 2e-5 * kappa };
      const wants: Record<string, Float64Array> = { ...want, ...grad };
      let first: Record<string, Float32Array> | null = null;
      for (const isa of isas) {
        assert.ok((addon as NativeAddon).select(isa), `select(${isa})`);
        for (const rt of rts) {
          for (let run = 0; run < 2; run++) {
            const got = runNative(rt, c, x), where = `${isa}, threads ${rt.threads}, run ${run}`;
            for (const [name, values] of Object.entries(got)) {
              const e = relErr(name, values, wants[name]);
              assert.ok(e < tol[name], `${where}: ${name} relative error ${e.toExponential(2)} (tolerance ${tol[name]})`);
              if (first !== null) {
                const i = values.findIndex((val, at) => !Object.is(val, first![name][at]));
                assert.equal(i, -1, `${where}: ${name}[${i}] = ${values[i]} differs from the first run's ${first[name][i]}`);
              }
            }
            first ??= got;
          }
        }
      }
    });
  }

  test('bad arguments are refused with a message', () => {
    const rt = rts[0], end = rt.heap().u8.length;
    const ptrs = { q: 64, k: 64, v: 64, mask: 0, out: 64, lse: 64, dout: 64, dq: 64, dk: 64, dv: 64 };
    const sizes = { B: 1, T: 1, S: 1, H: 1, Hkv: 1, Dh: 4, scale: 1, causal: true };
    assert.throws(() => nativeAttention(rt, { ...ptrs, ...sizes, H: 3, Hkv: 2 }), /H = 3 is not a multiple of Hkv = 2/);
    assert.throws(() => nativeAttention(rt, { ...ptrs, ...sizes, T: 0 }), /T = 0 must be an integer in \[1,/);
    assert.throws(() => nativeAttention(rt, { ...ptrs, ...sizes, softcap: -1 }), /softcap = -1/);
    assert.throws(() => nativeAttentionGrad(rt, { ...ptrs, ...sizes, dk: end - 8 }), /dk at byte .* past the memory/);
    assert.throws(() => nativeAttention(rt, { ...ptrs, ...sizes, mask: 66 }), /mask at byte 66 .*misaligned/);
  });
});
