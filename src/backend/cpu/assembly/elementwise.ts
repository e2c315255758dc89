// Elementwise kernels over strided views: broadcasting binary ops, where, affine, cast.
// binary and where take rows (all dims but the last) as work units; the wrappers in
// fast/elementwise.ts collapse contiguous dims first, so rows are long.
import { madd, splat } from './math';
import { walkStart, walkNext, offsetOf, metaAt, addr } from './strided';

/** Op codes: src/backend/ref/elementwise.ts BINARY_OPS. */
@inline function binVec(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(a, b);
    case 1: return f32x4.sub(a, b);
    case 2: return f32x4.mul(a, b);
    case 3: return f32x4.div(a, b);
    case 4: return f32x4.max(a, b);
    case 5: return f32x4.min(a, b);
    case 6: { // pow: no SIMD form, per lane
      let r = f32x4.splat(Mathf.pow(f32x4.extract_lane(a, 0), f32x4.extract_lane(b, 0)));
      r = f32x4.replace_lane(r, 1, Mathf.pow(f32x4.extract_lane(a, 1), f32x4.extract_lane(b, 1)));
      r = f32x4.replace_lane(r, 2, Mathf.pow(f32x4.extract_lane(a, 2), f32x4.extract_lane(b, 2)));
      return f32x4.replace_lane(r, 3, Mathf.pow(f32x4.extract_lane(a, 3), f32x4.extract_lane(b, 3)));
    }
    case 7: return v128.and(f32x4.gt(a, b), splat(1.0));
    case 8: return v128.and(f32x4.ge(a, b), splat(1.0));
    case 9: return v128.and(f32x4.eq(a, b), splat(1.0));
  }
  return a;
}

@inline function binScalar(op: i32, a: f32, b: f32): f32 {
  return f32x4.extract_lane(binVec(op, f32x4.splat(a), f32x4.splat(b)), 0);
}

/**
 * One output row of L elements: a and b advance by as, bs (elements) per element. The three
 * common stride patterns (1,1), (1,0), (0,1) get SIMD loops.
 */
@inline function binRow(op: i32, a: usize, b: usize, out: usize, L: i32, as: i32, bs: i32): void {
  let i = 0;
  if (as == 1 && bs == 1) {
    for (; i + 4 <= L; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, binVec(op, v128.load(a + o), v128.load(b + o)));
    }
  } else if (as == 1 && bs == 0) {
    const vb = v128.load32_splat(b);
    for (; i + 4 <= L; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, binVec(op, v128.load(a + o), vb));
    }
  } else if (as == 0 && bs == 1) {
    const va = v128.load32_splat(a);
    for (; i + 4 <= L; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, binVec(op, va, v128.load(b + o)));
    }
  }
  for (; i < L; i++) {
    store<f32>(out + (<usize>i << 2), binScalar(op, load<f32>(addr(a, i * as)), load<f32>(addr(b, i * bs))));
  }
}

@inline function binRows(op: i32, a: usize, b: usize, out: usize, ndim: i32, meta: usize, start: i32, end: i32, scratch: usize): void {
  const L = metaAt(meta, 0, ndim, ndim - 1);
  const as = metaAt(meta, 1, ndim, ndim - 1), bs = metaAt(meta, 2, ndim, ndim - 1);
  walkStart(meta, ndim, 2, start, scratch);
  for (let r = start; r < end; r++) {
    binRow(op, addr(a, offsetOf(scratch, 0)), addr(b, offsetOf(scratch, 1)), addr(out, r * L), L, as, bs);
    walkNext(meta, ndim, 2, scratch);
  }
}

/** out = a (op) b, broadcasting; meta = [shape, aStrides, bStrides]; out contiguous. */
export function binary(op: i32, a: usize, b: usize, out: usize, ndim: i32, meta: usize, start: i32, end: i32, scratch: usize): i32 {
  switch (op) {
    case 0: binRows(0, a, b, out, ndim, meta, start, end, scratch); break;
    case 1: binRows(1, a, b, out, ndim, meta, start, end, scratch); break;
    case 2: binRows(2, a, b, out, ndim, meta, start, end, scratch); break;
    case 3: binRows(3, a, b, out, ndim, meta, start, end, scratch); break;
    case 4: binRows(4, a, b, out, ndim, meta, start, end, scratch); break;
    case 5: binRows(5, a, b, out, ndim, meta, start, end, scratch); break;
    case 6: binRows(6, a, b, out, ndim, meta, start, end, scratch); break;
    case 7: binRows(7, a, b, out, ndim, meta, start, end, scratch); break;
    case 8: binRows(8, a, b, out, ndim, meta, start, end, scratch); break;
    case 9: binRows(9, a, b, out, ndim, meta, start, end, scratch); break;
    default: return 3;
  }
  return 0;
}

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
