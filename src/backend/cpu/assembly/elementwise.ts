// Elementwise kernels over strided views: where, affine, cast (the binary ops are in binary.ts,
// generated from src/backend/elementwise-ops.ts). where takes rows (all dims but the last) as work
// units; the wrappers in fast/elementwise.ts collapse contiguous dims first, so rows are long.
import { madd, splat } from './math';
import { walkStart, walkNext, offsetOf, metaAt, addr } from './strided';

/** v at element i of a row with stride s in {0, 1}: a load, or the row's single value. */
@inline function pick(p: usize, s: i32, i: i32, splatted: v128): v128 {
  return s == 1 ? v128.load(p + (<usize>i << 2)) : splatted;
}

/** out = cond != 0 ? a : b (NaN counts as true); meta = [shape, cStrides, aStrides, bStrides]. */
export function where(cond: usize, a: usize, b: usize, out: usize, ndim: i32, meta: usize, start: i32, end: i32, scratch: usize): i32 {
  const L = metaAt(meta, 0, ndim, ndim - 1);
  const cs = metaAt(meta, 1, ndim, ndim - 1), as = metaAt(meta, 2, ndim, ndim - 1), bs = metaAt(meta, 3, ndim, ndim - 1);
  const simd = (cs == 0 || cs == 1) && (as == 0 || as == 1) && (bs == 0 || bs == 1);
  walkStart(meta, ndim, 3, start, scratch);
  for (let r = start; r < end; r++) {
    const pc = addr(cond, offsetOf(scratch, 0)), pa = addr(a, offsetOf(scratch, 1)), pb = addr(b, offsetOf(scratch, 2));
    const po = addr(out, r * L);
    let i = 0;
    if (simd) {
      const vc = v128.load32_splat(pc), va = v128.load32_splat(pa), vb = v128.load32_splat(pb);
      for (; i + 4 <= L; i += 4) {
        const m = f32x4.ne(pick(pc, cs, i, vc), splat(0));
        v128.store(po + (<usize>i << 2), v128.bitselect(pick(pa, as, i, va), pick(pb, bs, i, vb), m));
      }
    }
    for (; i < L; i++) {
      const c = load<f32>(addr(pc, i * cs));
      store<f32>(po + (<usize>i << 2), c != 0 ? load<f32>(addr(pa, i * as)) : load<f32>(addr(pb, i * bs)));
    }
    walkNext(meta, ndim, 3, scratch);
  }
  return 0;
}

/** out = x * scale + shift over elements. */
export function affine(x: usize, out: usize, scale: f32, shift: f32, n: i32, start: i32, end: i32, scratch: usize): i32 {
  const vs = splat(scale), vt = splat(shift);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, madd(v128.load(x + o), vs, vt));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(madd(f32x4.splat(load<f32>(x + o)), vs, vt), 0));
  }
  return 0;
}

/** mode 0: int32 -> f32; mode 1: f32 -> int32, truncating and saturating (NaN -> 0). */
export function cast(src: usize, dst: usize, n: i32, mode: i32, start: i32, end: i32, scratch: usize): i32 {
  if (mode != 0 && mode != 1) return 3;
  let i = start;
  if (mode == 0) {
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      v128.store(dst + o, f32x4.convert_i32x4_s(v128.load(src + o)));
    }
    for (; i < end; i++) store<f32>(dst + (<usize>i << 2), <f32>load<i32>(src + (<usize>i << 2)));
  } else {
    for (; i + 4 <= end; i += 4) {
      const o = <usize>i << 2;
      v128.store(dst + o, i32x4.trunc_sat_f32x4_s(v128.load(src + o)));
    }
    for (; i < end; i++) {
      const o = <usize>i << 2;
      store<i32>(dst + o, i32x4.extract_lane(i32x4.trunc_sat_f32x4_s(f32x4.splat(load<f32>(src + o))), 0));
    }
  }
  return 0;
}
