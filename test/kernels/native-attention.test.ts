// The native fused attention (src/backend/cpu/native.ts) against the float64 reference kernels
// (src/backend/ref/attention.ts, itself checked against naive attention and finite differences in
// attention.test.ts): grouped-query heads, causal with T < S and T > S, sliding windows,
// soft-capping, padding masks (whole rows padded), head sizes 7 .. 128, long key ranges; on 1 and
// 2 threads and with every instruction set this CPU runs, whose results must all agree bit for bit
// (attention.cc). Skips, loudly, when the addon is not built.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import {
  loadNative,
  nativeAttention,
  nativeAttentionGrad,
  nativeLoadError,
  type NativeAddon,
} from '../../src/backend/cpu/native.js';
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
} from './attention-cases.js';

const addon = await loadNative();
const skip = addon === null ? `native addon not built: ${nativeLoadError}` : false;
if (skip) console.error(`\n*** SKIPPING test/kernels/native-attention.test: ${skip} ***\n`);

const cases: Case[] = [
  // the bench's small preset
  { B: 8, T: 128, S: 128, H: 8, Hkv: 8, Dh: 32, causal: true, window: 0, softcap: 0, pad: null },
  { B: 2, T: 128, S: 128, H: 12, Hkv: 12, Dh: 64, causal: true, window: 0, softcap: 0, pad: [0, 17] }, // GPT-2
  { B: 1, T: 70, S: 70, H: 2, Hkv: 1, Dh: 128, causal: true, window: 0, softcap: 0, pad: null },
  ...kernelCases,
  { B: 1, T: 8, S: 20_000, H: 1, Hkv: 1, Dh: 4, causal: true, window: 0, softcap: 0, pad: [1000] },
  ...randomCases(6),
];

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
      const want = refForward(c, x),
        grad = refBackward(c, x, want.out, want.lse);
      // The tolerances of the WebAssembly kernels' test: f32 rounding of dot products of length Dh
      // and sums over S keys; a score carries an absolute error of about |s| eps.
      const kappa = Math.max(1, scoreBound(c, x) / 32);
      const tol: Record<string, number> = {
        out: 5e-6 * kappa,
        lse: 5e-6,
        dq: 2e-5 * kappa,
        dk: 2e-5 * kappa,
        dv: 2e-5 * kappa,
      };
      const wants: Record<string, Float64Array> = { ...want, ...grad };
      let first: Record<string, Float64Array> | null = null;
      for (const isa of isas) {
        assert.ok((addon as NativeAddon).select(isa), `select(${isa})`);
        for (const rt of rts) {
          for (let run = 0; run < 2; run++) {
            const got = runFused(rt, c, x, nativeAttention, nativeAttentionGrad),
              where = `${isa}, threads ${rt.threads}, run ${run}`;
            for (const [name, values] of Object.entries(got)) {
              const e = relErr(name, values, wants[name]);
              assert.ok(
                e < tol[name],
                `${where}: ${name} relative error ${e.toExponential(2)} (tolerance ${tol[name]})`,
              );
              if (first !== null) {
                const i = values.findIndex((val, at) => !Object.is(val, first![name][at]));
                assert.equal(
                  i,
                  -1,
                  `${where}: ${name}[${i}] = ${values[i]} differs from the first run's ${first[name][i]}`,
                );
              }
            }
            first ??= got;
          }
        }
      }
    });
  }

  test('bad arguments are refused with a message', () => {
    const rt = rts[0],
      end = rt.heap().u8.length;
    const ptrs = { q: 64, k: 64, v: 64, mask: 0, out: 64, lse: 64, dout: 64, dq: 64, dk: 64, dv: 64 };
    const sizes = { B: 1, T: 1, S: 1, H: 1, Hkv: 1, Dh: 4, scale: 1, causal: true };
    assert.throws(() => nativeAttention(rt, { ...ptrs, ...sizes, H: 3, Hkv: 2 }), /H = 3 is not a multiple of Hkv = 2/);
    assert.throws(() => nativeAttention(rt, { ...ptrs, ...sizes, T: 0 }), /T = 0 must be an integer in \[1,/);
    assert.throws(() => nativeAttention(rt, { ...ptrs, ...sizes, softcap: -1 }), /softcap = -1/);
    assert.throws(() => nativeAttentionGrad(rt, { ...ptrs, ...sizes, dk: end - 8 }), /dk at byte .* past the memory/);
    assert.throws(() => nativeAttention(rt, { ...ptrs, ...sizes, mask: 66 }), /mask at byte 66 .*misaligned/);
  });
});
