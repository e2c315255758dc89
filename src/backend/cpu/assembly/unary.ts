// Elementwise functions of one input and their gradients (op codes: src/backend/ref/unary.ts).
// Work unit: elements. Each op gets its own SIMD loop: `unaryLoop` is inlined with a constant
// op, so the switch in `unaryVec` folds away.
import { madd, splat, exp4, log4, tanh4, sigmoid4, sigmoidFrom, sigmoidcFrom, log1p4, erfc4 } from './math';

/** e = exp(-|x|) of the sigmoid helpers. */
@inline function expNegAbs(x: v128): v128 {
  return exp4(f32x4.neg(f32x4.abs(x)));
}

/** 1 / (1 + e). */
@inline function recip1p(e: v128): v128 {
  return f32x4.div(splat(1.0), f32x4.add(splat(1.0), e));
}

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;
const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

@inline function unaryVec(op: i32, x: v128): v128 {
  switch (op) {
    case 0: return f32x4.neg(x);
    case 1: return exp4(x);
    case 2: return log4(x);
    case 3: return tanh4(x);
    case 4: return sigmoid4(x);
    case 5: { // logsigmoid = min(x, 0) - log1p(exp(-|x|))
      const l = log1p4(exp4(f32x4.neg(f32x4.abs(x))));
      return f32x4.sub(f32x4.min(x, splat(0)), l);
    }
    case 6: { // softplus = max(x, 0) + log1p(exp(-|x|))
      const l = log1p4(exp4(f32x4.neg(f32x4.abs(x))));
      return f32x4.add(f32x4.max(x, splat(0)), l);
    }
    case 7: return v128.and(x, f32x4.gt(x, splat(0)));
    case 8: { // gelu_tanh = x (1 + tanh(u)) / 2 = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
      // x / (1 + exp(-2u)): exp(-2u) = inf for x << 0 gives -0, the limit
      const minus2u = f32x4.mul(f32x4.mul(splat(-2 * SQRT_2_OVER_PI), x), madd(f32x4.mul(x, x), splat(GELU_C), splat(1.0)));
      return f32x4.div(x, f32x4.add(splat(1.0), exp4(minus2u)));
    }
    case 9: // gelu_erf = x erfc(-x / sqrt 2) / 2
      return f32x4.mul(f32x4.mul(splat(0.5), x), erfc4(f32x4.mul(x, splat(-INV_SQRT2))));
    case 10: return f32x4.div(x, f32x4.add(splat(1.0), exp4(f32x4.neg(x))));
    case 11: return f32x4.sqrt(x);
    case 12: return f32x4.div(splat(1.0), f32x4.sqrt(x));
    case 13: return f32x4.mul(x, x);
    case 14: return f32x4.abs(x);
    case 15: return f32x4.div(splat(1.0), x);
  }
  return x;
}

/** f'(x) dy. */
@inline function gradVec(op: i32, x: v128, dy: v128): v128 {
  switch (op) {
    case 0: return f32x4.neg(dy);
    case 1: return f32x4.mul(exp4(x), dy);
    case 2: return f32x4.div(dy, x);
    case 3: { // 1 - tanh^2 = 4 s(2x) (1 - s(2x)) = 4 e r^2, e = exp(-2|x|): no cancellation for large |x|
      const e = expNegAbs(f32x4.add(x, x)), r = recip1p(e);
      return f32x4.mul(f32x4.mul(f32x4.mul(e, f32x4.mul(r, r)), splat(4.0)), dy);
    }
    case 4: { // s (1 - s) = e r^2
      const e = expNegAbs(x), r = recip1p(e);
      return f32x4.mul(f32x4.mul(e, f32x4.mul(r, r)), dy);
    }
    case 5: { const e = expNegAbs(x); return f32x4.mul(sigmoidcFrom(x, e, recip1p(e)), dy); }
    case 6: { const e = expNegAbs(x); return f32x4.mul(sigmoidFrom(x, e, recip1p(e)), dy); }
    case 7: return f32x4.mul(v128.and(splat(1.0), f32x4.gt(x, splat(0))), dy);
    case 8: { // d/dx x s(2u) = s + 2 x s (1 - s) u', u' = sqrt(2/pi) (1 + 3 0.044715 x^2)
      const x2 = f32x4.mul(x, x);
      const u2 = f32x4.mul(f32x4.mul(splat(2 * SQRT_2_OVER_PI), x), madd(x2, splat(GELU_C), splat(1.0)));
      const e = expNegAbs(u2), r = recip1p(e);
      const du = f32x4.mul(splat(2 * SQRT_2_OVER_PI), madd(x2, splat(3 * GELU_C), splat(1.0)));
      return f32x4.mul(madd(f32x4.mul(f32x4.mul(x, e), f32x4.mul(r, r)), du, sigmoidFrom(u2, e, r)), dy);
    }
    case 9: { // d/dx x Phi(x) = Phi(x) + x exp(-x^2 / 2) / sqrt(2 pi)
      const phi = f32x4.mul(splat(0.5), erfc4(f32x4.mul(x, splat(-INV_SQRT2))));
      const pdf = f32x4.mul(exp4(f32x4.mul(f32x4.mul(x, x), splat(-0.5))), splat(INV_SQRT_2PI));
      return f32x4.mul(madd(x, pdf, phi), dy);
    }
    case 10: { // s (1 + x (1 - s)) = s + x e r^2
      const e = expNegAbs(x), r = recip1p(e);
      return f32x4.mul(madd(x, f32x4.mul(e, f32x4.mul(r, r)), sigmoidFrom(x, e, r)), dy);
    }
    case 11: return f32x4.div(f32x4.mul(splat(0.5), dy), f32x4.sqrt(x));
    case 12: return f32x4.div(f32x4.mul(splat(-0.5), dy), f32x4.mul(x, f32x4.sqrt(x)));
    case 13: return f32x4.mul(f32x4.add(x, x), dy);
    case 14: { // sign(x) dy, 0 at 0
      const sign = v128.or(v128.and(splat(1.0), f32x4.ne(x, splat(0))), v128.and(x, i32x4.splat(0x80000000)));
      return f32x4.mul(sign, dy);
    }
    case 15: return f32x4.div(f32x4.neg(dy), f32x4.mul(x, x));
  }
  return dy;
}

@inline function unaryLoop(op: i32, x: usize, out: usize, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, unaryVec(op, v128.load(x + o)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(unaryVec(op, f32x4.splat(load<f32>(x + o))), 0));
  }
}

@inline function gradLoop(op: i32, x: usize, dy: usize, dx: usize, start: i32, end: i32): void {
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, gradVec(op, v128.load(x + o), v128.load(dy + o)));
  }
  for (; i < end; i++) {
    const o = <usize>i << 2;
    const v = gradVec(op, f32x4.splat(load<f32>(x + o)), f32x4.splat(load<f32>(dy + o)));
    store<f32>(dx + o, f32x4.extract_lane(v, 0));
  }
}

/** out[i] = f_op(x[i]) for i in [start, end). Error 3 for an unknown op. */
export function unary(op: i32, x: usize, out: usize, n: i32, start: i32, end: i32, scratch: usize): i32 {
  switch (op) {
    case 0: unaryLoop(0, x, out, start, end); break;
    case 1: unaryLoop(1, x, out, start, end); break;
    case 2: unaryLoop(2, x, out, start, end); break;
    case 3: unaryLoop(3, x, out, start, end); break;
    case 4: unaryLoop(4, x, out, start, end); break;
    case 5: unaryLoop(5, x, out, start, end); break;
    case 6: unaryLoop(6, x, out, start, end); break;
    case 7: unaryLoop(7, x, out, start, end); break;
    case 8: unaryLoop(8, x, out, start, end); break;
    case 9: unaryLoop(9, x, out, start, end); break;
    case 10: unaryLoop(10, x, out, start, end); break;
    case 11: unaryLoop(11, x, out, start, end); break;
    case 12: unaryLoop(12, x, out, start, end); break;
    case 13: unaryLoop(13, x, out, start, end); break;
    case 14: unaryLoop(14, x, out, start, end); break;
    case 15: unaryLoop(15, x, out, start, end); break;
    default: return 3;
  }
  return 0;
}

/** dx[i] = f_op'(x[i]) dy[i] for i in [start, end). */
export function unary_grad(op: i32, x: usize, dy: usize, dx: usize, n: i32, start: i32, end: i32, scratch: usize): i32 {
  switch (op) {
    case 0: gradLoop(0, x, dy, dx, start, end); break;
    case 1: gradLoop(1, x, dy, dx, start, end); break;
    case 2: gradLoop(2, x, dy, dx, start, end); break;
    case 3: gradLoop(3, x, dy, dx, start, end); break;
    case 4: gradLoop(4, x, dy, dx, start, end); break;
    case 5: gradLoop(5, x, dy, dx, start, end); break;
    case 6: gradLoop(6, x, dy, dx, start, end); break;
    case 7: gradLoop(7, x, dy, dx, start, end); break;
    case 8: gradLoop(8, x, dy, dx, start, end); break;
    case 9: gradLoop(9, x, dy, dx, start, end); break;
    case 10: gradLoop(10, x, dy, dx, start, end); break;
    case 11: gradLoop(11, x, dy, dx, start, end); break;
    case 12: gradLoop(12, x, dy, dx, start, end); break;
    case 13: gradLoop(13, x, dy, dx, start, end); break;
    case 14: gradLoop(14, x, dy, dx, start, end); break;
    case 15: gradLoop(15, x, dy, dx, start, end); break;
    default: return 3;
  }
  return 0;
}
