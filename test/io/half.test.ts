// bfloat16 / binary16 conversions against definitions written out independently.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToBf16Bits, f32ToF16, f32ToF16Bits } from '../../src/io/half.js';

/** binary16 value from its bits, by the IEEE 754 definition, in float64. */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

test('f16ToF32 decodes all 65536 half values exactly', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const got = f16ToF32(all);
  for (let h = 0; h < 65536; h++) {
    const want = halfValue(h);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got[h]), `h=${h.toString(16)}`);
    else assert.ok(Object.is(got[h], want), `h=0x${h.toString(16)}: got ${got[h]}, want ${want}`);
  }
});

test('f32ToF16 keeps every half value and rounds midpoints to even', () => {
  for (let h = 0; h < 65536; h++) {
    const v = halfValue(h);
    if (!Number.isNaN(v)) assert.equal(f32ToF16Bits(v), h, `h=0x${h.toString(16)}`);
    else assert.equal(f32ToF16Bits(v) & 0x7e00, 0x7e00, 'NaN stays a quiet NaN');
  }
  for (let h = 0; h < 0x7bff; h++) {
    // positive finite neighbours h, h+1
    const lo = halfValue(h),
      hi = halfValue(h + 1),
      mid = (lo + hi) / 2;
    assert.equal(Math.fround(mid), mid);
    assert.equal(f32ToF16Bits(mid), h % 2 === 0 ? h : h + 1, `tie between 0x${h.toString(16)} and its successor`);
    assert.equal(f32ToF16Bits(mid * (1 + 2 ** -20)), h + 1);
    assert.equal(f32ToF16Bits(mid * (1 - 2 ** -20)), h);
    assert.equal(f32ToF16Bits(-mid), (h % 2 === 0 ? h : h + 1) | 0x8000);
  }
  assert.equal(f32ToF16Bits(65519.996), 0x7bff); // below the midpoint to 2^16: largest finite
  assert.equal(f32ToF16Bits(65520), 0x7c00); // the midpoint rounds to even: infinity
  assert.equal(f32ToF16Bits(2 ** -25), 0); // half the smallest subnormal: tie to even zero
  assert.equal(f32ToF16Bits(2 ** -25 * 1.0001), 1);
  assert.equal(f32ToF16Bits(1e-10), 0);
  assert.ok(Object.is(halfValue(f32ToF16Bits(-1e-10)), -0));
  assert.deepEqual([...f32ToF16(new Float32Array([1, -2, 65504, Infinity]))], [0x3c00, 0xc000, 0x7bff, 0x7c00]);
});

test('f32ToBf16 rounds to the nearest bfloat16, ties to even, like torch', () => {
  const f = new Float32Array(1),
    u = new Uint32Array(f.buffer);
  const value = (b: number) => {
    u[0] = b << 16;
    return f[0];
  };
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 20000; i++) {
    u[0] = rand();
    const x = f[0];
    if (!Number.isFinite(x)) continue;
    const b = f32ToBf16Bits(x),
      got = value(b);
    const down = value(u[0] >>> 16),
      up = value((u[0] >>> 16) + 1); // the two candidates by truncation
    const dd = Math.abs(x - down),
      du = Math.abs(up - x);
    const want = dd < du ? down : du < dd ? up : (u[0] >>> 16) & 1 ? up : down;
    assert.ok(Object.is(got, want) || (!Number.isFinite(want) && !Number.isFinite(got)), `x=${x}: ${got} vs ${want}`);
  }
  assert.equal(f32ToBf16Bits(NaN), 0x7fc0);
  assert.equal(f32ToBf16Bits(3.4e38), 0x7f80); // rounds up past the largest bf16 to infinity
  assert.equal(f32ToBf16Bits(-0), 0x8000);
  // exact round trip for values that are already bf16
  const back = bf16ToF32(f32ToBf16(new Float32Array([1, -1.5, 2 ** -130, 3.140625])));
  assert.deepEqual([...back], [1, -1.5, 2 ** -130, 3.140625]);
});
