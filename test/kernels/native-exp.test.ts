// The native attention's exp (native/src/attention_rows.inc, vexp) against the WebAssembly kernels'
// (src/backend/cpu/assembly/math.ts, exp4, through the unary 'exp' kernel) bit for bit, on every
// instruction set this CPU runs: the special values (infinities, NaN payloads, signed zeros, the
// clamps at -104 and 88.8, the overflow and underflow edges, denormal results), a dense sweep of
// [-110, 95] and the range attention exponentiates (scores minus their maximum). Node runs the
// relaxed-SIMD build, whose madd is one fused multiply-add, as vexp's. Skips, loudly, without the addon.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { unary } from '../../src/backend/cpu/fast/unary.js';
import { loadNative, nativeLoadError, type NativeAddon } from '../../src/backend/cpu/native.js';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { rng } from './helpers.js';

const addon = await loadNative();
const skip = addon === null ? `native addon not built: ${nativeLoadError}` : false;
if (skip) console.error(`\n*** SKIPPING test/kernels/native-exp.test: ${skip} ***\n`);

const f32 = (x: number): number => Math.fround(x);
const ulpsAround = (x: number, k: number): number[] => {
  const b = new Float32Array([x]),
    u = new Int32Array(b.buffer),
    out: number[] = [];
  for (let d = -k; d <= k; d++) out.push(new Float32Array(new Int32Array([u[0] + d]).buffer)[0]);
  return out;
};

/** The inputs: special values, the edges each with its neighbours, a dense sweep and attention's range. */
function inputs(): Float32Array {
  const special = [-Infinity, Infinity, NaN, -NaN, 0, -0, 1e-45, -1e-45, 1e-30, -1e-30, f32(Math.LN2), 1, -1];
  const edges = [
    -1e30, -200, -104, -103.97, -103.28, -88.72, -87.34, -87.33, -10, 10, 88, 88.3, 88.72, 88.7, 88.8, 100,
  ];
  // NaNs of either sign, quiet and signalling, with payloads: their bits pass through unchanged too.
  const nans = [...new Float32Array(new Uint32Array([0xffc00000, 0x7f800001, 0xff812345, 0x7fabcdef]).buffer)];
  const xs = [...special, ...nans, ...edges.flatMap((e) => ulpsAround(f32(e), 3)), 1e30];
  for (let i = 0; i <= 200_000; i++) xs.push(-110 + (205 * i) / 200_000);
  const r = rng(7);
  for (let i = 0; i < 100_000; i++) xs.push(-30 * r() * r()); // x - max(x): mostly near 0, down to -30
  return Float32Array.from(xs);
}

describe('native attention exp vs WebAssembly exp4', { skip }, () => {
  let rt: KernelRuntime;
  before(async () => {
    rt = await KernelRuntime.create({ threads: 1 });
  });
  after(async () => {
    (addon as NativeAddon).select('auto');
    await rt.close();
  });

  test('the same bits on every instruction set', () => {
    assert.ok(rt.relaxed, 'the relaxed-SIMD kernels did not load: their fused madd is what vexp matches');
    const x = inputs(),
      n = x.length;
    const xp = rt.malloc(n * 4),
      yp = rt.malloc(n * 4);
    rt.heap().f32.set(x, xp / 4);
    unary(rt, 'exp', xp, yp, n);
    const wasm = rt.heap().f32.slice(yp / 4, yp / 4 + n);
    rt.free(xp);
    rt.free(yp);
    const wasmBits = new Uint32Array(wasm.buffer);
    for (const isa of (addon as NativeAddon).info().available.split(',')) {
      assert.ok((addon as NativeAddon).select(isa), `select(${isa})`);
      const native = new Float32Array(n);
      (addon as NativeAddon).exp(x, native);
      const bits = new Uint32Array(native.buffer);
      const diff: string[] = [];
      for (let i = 0; i < n && diff.length < 8; i++) {
        if (bits[i] !== wasmBits[i])
          diff.push(`exp(${x[i]}): native ${native[i]} (0x${bits[i].toString(16)}), wasm ${wasm[i]}`);
      }
      assert.deepEqual(diff, [], `${isa}: native vexp differs from math.ts's exp4 (attention_rows.inc)`);
      // The values themselves: the exact limits, and e^x within 2 ulp over the sweep.
      assert.equal(native[0], 0, `${isa}: exp(-inf)`);
      assert.equal(native[1], Infinity, `${isa}: exp(inf)`);
      assert.ok(Number.isNaN(native[2]), `${isa}: exp(NaN)`);
      assert.equal(native[4], 1, `${isa}: exp(0)`);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const want = Math.exp(x[i]);
        if (want > 1e-37 && want < 3e38) worst = Math.max(worst, Math.abs(native[i] - want) / want);
      }
      assert.ok(worst < 2.5e-7, `${isa}: max relative error ${worst}`);
    }
  });

  test('exp(x, y) refuses anything but two Float32Arrays of one length', () => {
    assert.throws(
      () => (addon as NativeAddon).exp(new Float32Array(3), new Float32Array(2)),
      /two Float32Arrays of one length/,
    );
    assert.throws(
      () => (addon as NativeAddon).exp(new Float64Array(2) as unknown as Float32Array, new Float32Array(2)),
      /two Float32Arrays of one length/,
    );
  });
});
