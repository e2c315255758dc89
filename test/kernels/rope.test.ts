// Rotary embedding: sign -1 is the transpose (and, for real angles, the inverse) of sign +1,
// which makes it rope's backward (checked by finite differences); the WebAssembly kernel
// against the reference, in place and out of place, four runtimes.
import { after, test } from 'node:test';
import { rope as refRope } from '../../src/backend/ref/rope.js';
import { rope } from '../../src/backend/cpu/fast/rope.js';
import { allRuntimes, assertClose, closeRuntimes, f32, Mem, randn, rng } from './helpers.js';
import { checkGrad } from './gradcheck.js';

after(closeRuntimes);

/** cos/sin [B, T, R/2] of transformers' default inverse frequencies (base 10000), positions t. */
function angles(B: number, T: number, R: number): { cos: Float64Array; sin: Float64Array } {
  const half = R / 2,
    cos = new Float64Array(B * T * half),
    sin = new Float64Array(B * T * half);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const a = (t + 3 * b) * 10000 ** (-(2 * i) / R);
        cos[(b * T + t) * half + i] = Math.cos(a);
        sin[(b * T + t) * half + i] = Math.sin(a);
      }
    }
  }
  return { cos, sin };
}

test('reference rope: sign -1 is the transpose of sign +1 (finite differences) and its inverse', () => {
  const rand = rng(51);
  for (const [B, T, H, Dh, R] of [
    [1, 1, 1, 2, 2],
    [2, 3, 2, 6, 4],
    [1, 4, 3, 8, 8],
  ]) {
    const n = B * T * H * Dh;
    const { cos, sin } = angles(B, T, R);
    // random cos/sin (not a rotation) for the transpose check, so that it does not rely on orthogonality
    const c = randn(rand, cos.length),
      s = randn(rand, sin.length);
    const x = randn(rand, n),
      w = randn(rand, n);
    const back = new Float64Array(n);
    refRope(w, c, s, back, B, T, H, Dh, R, -1);
    checkGrad(
      `rope [${B}, ${T}, ${H}, ${Dh}] R=${R}`,
      (v) => {
        const o = new Float64Array(n);
        refRope(v, c, s, o, B, T, H, Dh, R, 1);
        return o;
      },
      x,
      w,
      back,
    );
    const y = new Float64Array(n),
      z = new Float64Array(n);
    refRope(x, cos, sin, y, B, T, H, Dh, R, 1);
    refRope(y, cos, sin, z, B, T, H, Dh, R, -1);
    assertClose(z, x, 'rope(rope(x, +1), -1) = x', 1e-12, 1e-12);
  }
});

test('wasm rope matches the reference (sign +-1, partial rotary dims, in place)', async () => {
  const runtimes = await allRuntimes();
  const rand = rng(52);
  const shapes: [number, number, number, number, number][] = [
    [1, 1, 1, 2, 2],
    [1, 7, 3, 14, 6],
    [2, 33, 4, 16, 16],
    [1, 7, 2, 64, 32],
    [2, 64, 12, 64, 64],
    [1, 33, 7, 10, 2],
  ];
  for (const [B, T, H, Dh, R] of shapes) {
    const n = B * T * H * Dh;
    const { cos, sin } = angles(B, T, R);
    const c = f32(cos),
      s = f32(sin),
      x = f32(randn(rand, n));
    for (const sign of [1, -1] as const) {
      const want = new Float64Array(n);
      refRope(x, c, s, want, B, T, H, Dh, R, sign);
      for (const { rt, label } of runtimes) {
        const mem = new Mem(rt, R === 6 ? 4 : 0);
        const px = mem.f32(x),
          pc = mem.f32(c),
          ps = mem.f32(s),
          po = mem.zeros(n, NaN);
        const at = `[${B}, ${T}, ${H}, ${Dh}] R=${R} sign ${sign} (${label})`;
        rope(rt, px, pc, ps, po, B, T, H, Dh, R, sign);
        assertClose(mem.read(po, n), want, `rope ${at}`, 1e-6, 1e-6);
        rope(rt, px, pc, ps, px, B, T, H, Dh, R, sign);
        assertClose(mem.read(px, n), want, `rope in place ${at}`, 1e-6, 1e-6);
        mem.free();
      }
    }
  }
});
