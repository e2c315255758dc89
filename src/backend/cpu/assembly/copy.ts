// Strided copy: dst[idx . dstStrides] = src[idx . srcStrides]; the one kernel behind permute,
// slice, concat and broadcastTo. Work unit: rows (all dims but the last).
import { walkStart, walkNext, offsetOf, metaAt } from './strided';

/** Byte address of element `off` of elemBytes-sized elements at base. */
@inline function at(base: usize, off: i32, shift: i32): usize {
  return base + <usize>(<isize>off << shift);
}

/** meta = [shape, srcStrides, dstStrides] (elements); elemBytes 1, 2, 4 or 8 (else error 3). */
export function copy_strided(src: usize, dst: usize, ndim: i32, meta: usize, elemBytes: i32, start: i32, end: i32, scratch: usize): i32 {
  const shift = elemBytes == 4 ? 2 : elemBytes == 2 ? 1 : elemBytes == 8 ? 3 : elemBytes == 1 ? 0 : -1;
  if (shift < 0) return 3;
  const L = metaAt(meta, 0, ndim, ndim - 1);
  const ss = metaAt(meta, 1, ndim, ndim - 1), ds = metaAt(meta, 2, ndim, ndim - 1);
  walkStart(meta, ndim, 2, start, scratch);
  for (let r = start; r < end; r++) {
    const ps = at(src, offsetOf(scratch, 0), shift), pd = at(dst, offsetOf(scratch, 1), shift);
    if (ss == 1 && ds == 1) {
      // contiguous row: 16-byte vectors, then the remaining bytes
      const bytes = <usize>L << shift;
      let o: usize = 0;
      for (; o + 64 <= bytes; o += 64) {
        v128.store(pd + o, v128.load(ps + o));
        v128.store(pd + o + 16, v128.load(ps + o + 16));
        v128.store(pd + o + 32, v128.load(ps + o + 32));
        v128.store(pd + o + 48, v128.load(ps + o + 48));
      }
      for (; o + 16 <= bytes; o += 16) v128.store(pd + o, v128.load(ps + o));
      for (; o < bytes; o++) store<u8>(pd + o, load<u8>(ps + o));
    } else if (shift == 2) {
      if (ss == 0 && ds == 1) {
        const v = v128.load32_splat(ps);
        let i = 0;
        for (; i + 4 <= L; i += 4) v128.store(pd + (<usize>i << 2), v);
        for (; i < L; i++) store<u32>(pd + (<usize>i << 2), load<u32>(ps));
      } else {
        for (let i = 0; i < L; i++) store<u32>(at(pd, i * ds, 2), load<u32>(at(ps, i * ss, 2)));
      }
    } else if (shift == 1) {
      for (let i = 0; i < L; i++) store<u16>(at(pd, i * ds, 1), load<u16>(at(ps, i * ss, 1)));
    } else if (shift == 3) {
      for (let i = 0; i < L; i++) store<u64>(at(pd, i * ds, 3), load<u64>(at(ps, i * ss, 3)));
    } else {
      for (let i = 0; i < L; i++) store<u8>(at(pd, i * ds, 0), load<u8>(at(ps, i * ss, 0)));
    }
    walkNext(meta, ndim, 2, scratch);
  }
  return 0;
}
