// 16-bit floats <-> float32: bfloat16 (the top half of an f32) and IEEE 754 binary16.
// Narrowing rounds to nearest, ties to even, as torch's `.to(torch.bfloat16 / torch.float16)` does.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bit pattern of the binary16 value with bits `h`. */
function halfToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let man = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (man << 13)) >>> 0; // inf, NaN
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (man << 13)) >>> 0; // 112 = 127 - 15
  if (man === 0) return sign >>> 0; // +-0
  // subnormal man * 2^-24: shift the leading 1 up to bit 10, lowering the exponent as we go
  let e = 113;
  while ((man & 0x400) === 0) {
    man <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((man & 0x3ff) << 13)) >>> 0;
}

let halfTable: Int32Array | undefined;
/** The float32 bit patterns of all 65536 binary16 values (256 KiB, built on first use). */
function table(): Int32Array {
  if (!halfTable) {
    halfTable = new Int32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToF32Bits(h);
  }
  return halfTable;
}

/** binary16 bits (Uint16Array) -> float32 values (exact). Bits are copied as integers: a NaN keeps
 *  its payload whichever way the engine compiled this loop (a float copy may set the quiet bit). */
export function f16ToF32(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  const t = table(),
    out = new Int32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return dst;
}

/** bfloat16 bits (Uint16Array) -> float32 values (exact: the bits become the top half). */
export function bf16ToF32(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  const out = new Int32Array(dst.buffer, dst.byteOffset, dst.length); // int32 stores stay on V8's fast path
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return dst;
}

/** bfloat16 bits of one float32, round to nearest even; NaN -> 0x7fc0 (as c10::BFloat16). */
export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  return (u & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : roundBf16(u);
}

/** Top 16 bits of `u`, plus 1 if the low 16 round up: above half, or exactly half and odd. */
function roundBf16(u: number): number {
  const hi = u >>> 16;
  return hi + (((u & 0xffff) + (hi & 1) + 0x7fff) >>> 16);
}

/** binary16 bits of one float32, round to nearest even; overflow -> inf, underflow -> subnormal or 0. */
export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127; // unbiased exponent
  const man = u & 0x7fffff;
  if (e === 128) return sign | 0x7c00 | (man !== 0 ? 0x200 | (man >>> 13) : 0); // inf, NaN (quiet)
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // normal range: keep 10 of 23 mantissa bits; a carry may ripple into the exponent
    const h = ((e + 15) << 10) | (man >>> 13),
      rest = man & 0x1fff;
    return sign | (h + (rest > 0x1000 || (rest === 0x1000 && h & 1) ? 1 : 0));
  }
  if (e < -25) return sign; // below half the smallest subnormal (2^-25)
  // subnormal: value in units of 2^-24 is (1.man * 2^23) >> shift
  const full = man | 0x800000,
    shift = -e - 1; // 14..24
  const h = full >>> shift,
    rest = full & ((1 << shift) - 1),
    half = 1 << (shift - 1);
  return sign | (h + (rest > half || (rest === half && h & 1) ? 1 : 0));
}

/** float32 values -> bfloat16 bits, round to nearest even. */
export function f32ToBf16(src: Float32Array, dst = new Uint16Array(src.length)): Uint16Array {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const u = bits[i];
    dst[i] = (u & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : roundBf16(u);
  }
  return dst;
}

/** float32 values -> binary16 bits, round to nearest even. */
export function f32ToF16(src: Float32Array, dst = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = f32ToF16Bits(src[i]);
  return dst;
}
