// SIMD math for the kernels: f32x4 exp, log, tanh, sigmoid, erf and erfc as polynomial
// approximations accurate to a few ulp over the whole float32 range, NaN-propagating, with
// exp(-inf) = 0, exp(+inf) = inf and saturation for large |x|. Not exported from index.ts: these
// are helpers, inlined into the kernels.
//
// exp and log follow Cephes' expf/logf (Moshier); tanh below 0.625 is Cephes' tanhf polynomial;
// the erf polynomials were fitted for this file (least squares on Chebyshev nodes, relative
// weight): erf(x) = x P(x^2) on |x| < 1 and erfc(x) = exp(-x^2) t R(t), t = 1/x, on [1, 10]
// (max error 2.4 ulp for erf, 4e-6 relative for erfc, dominated by rounding of x^2).

/** a * b + c: fused (one rounding) in the relaxed-SIMD build, two roundings otherwise. */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

@inline export function splat(x: f32): v128 {
  return f32x4.splat(x);
}

/**
 * exp(x). x is clamped to [-104, 88.8] (beyond both, the float32 result is 0 or inf) with
 * pmin/pmax, which keep NaN (one instruction each, where min/max need several).
 */
@inline export function exp4(x: v128): v128 {
  x = f32x4.pmax(f32x4.pmin(x, splat(88.8)), splat(-104.0));
  // n = round(x / ln2) by the 1.5 * 2^23 trick: t's low mantissa bits hold n as an integer
  const t = madd(x, splat(1.44269504088896341), splat(12582912.0));
  const n = f32x4.sub(t, splat(12582912.0));
  const ni = i32x4.sub(t, i32x4.splat(0x4b400000));
  // r = x - n ln2 in two parts (Cody-Waite), |r| <= ln2 / 2
  let r = madd(n, splat(-0.693359375), x);
  r = madd(n, splat(2.12194440e-4), r);
  let p = splat(1.9875691500e-4);
  p = madd(p, r, splat(1.3981999507e-3));
  p = madd(p, r, splat(8.3334519073e-3));
  p = madd(p, r, splat(4.1665795894e-2));
  p = madd(p, r, splat(1.6666665459e-1));
  p = madd(p, r, splat(5.0000001201e-1));
  p = madd(p, f32x4.mul(r, r), f32x4.add(r, splat(1.0)));
  // times 2^n, in two halves so that n in [-151, 128] keeps both factors normal
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const s1 = i32x4.shl(i32x4.add(n1, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(n2, i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

/** log(x): -inf at 0, NaN below 0 and at NaN, inf at inf; denormals handled. */
@inline export function log4(x: v128): v128 {
  const tiny = f32x4.lt(x, splat(1.17549435e-38));
  const xs = v128.bitselect(f32x4.mul(x, splat(8388608.0)), x, tiny);
  // xs = m 2^e with m in [0.5, 1)
  let e = i32x4.sub(i32x4.shr_u(xs, 23), i32x4.splat(126));
  e = i32x4.sub(e, v128.and(tiny, i32x4.splat(23)));
  let m = v128.or(v128.and(xs, i32x4.splat(0x007fffff)), i32x4.splat(0x3f000000));
  // m < sqrt(1/2): use 2m and e - 1 so that m - 1 lies in [sqrt(1/2) - 1, sqrt(2) - 1)
  const lo = f32x4.lt(m, splat(0.707106781186547524));
  e = i32x4.add(e, lo);
  m = f32x4.sub(f32x4.add(m, v128.and(m, lo)), splat(1.0));
  const ef = f32x4.convert_i32x4_s(e);
  const z = f32x4.mul(m, m);
  let y = splat(7.0376836292e-2);
  y = madd(y, m, splat(-1.1514610310e-1));
  y = madd(y, m, splat(1.1676998740e-1));
  y = madd(y, m, splat(-1.2420140846e-1));
  y = madd(y, m, splat(1.4249322787e-1));
  y = madd(y, m, splat(-1.6668057665e-1));
  y = madd(y, m, splat(2.0000714765e-1));
  y = madd(y, m, splat(-2.4999993993e-1));
  y = madd(y, m, splat(3.3333331174e-1));
  y = f32x4.mul(f32x4.mul(y, m), z);
  y = madd(ef, splat(-2.12194440e-4), y);
  y = madd(z, splat(-0.5), y);
  let res = f32x4.add(m, y);
  res = madd(ef, splat(0.693359375), res);
  res = v128.bitselect(splat(-Infinity), res, f32x4.eq(x, splat(0)));
  res = v128.bitselect(x, res, f32x4.eq(x, splat(Infinity)));
  return v128.bitselect(splat(NaN), res, v128.not(f32x4.ge(x, splat(0))));
}

/** tanh(x): odd polynomial below |x| = 0.625, 1 - 2 / (exp(2|x|) + 1) above. */
@inline export function tanh4(x: v128): v128 {
  const a = f32x4.abs(x);
  const z = f32x4.mul(x, x);
  let p = splat(-5.70498872745e-3);
  p = madd(p, z, splat(2.06390887954e-2));
  p = madd(p, z, splat(-5.37397155531e-2));
  p = madd(p, z, splat(1.33314422036e-1));
  p = madd(p, z, splat(-3.33332819422e-1));
  const small = madd(f32x4.mul(p, z), x, x);
  const e = exp4(f32x4.add(a, a));
  const big = f32x4.sub(splat(1.0), f32x4.div(splat(2.0), f32x4.add(e, splat(1.0))));
  const signed = v128.or(big, v128.and(x, i32x4.splat(0x80000000)));
  return v128.bitselect(small, signed, f32x4.lt(a, splat(0.625)));
}

/**
 * sigmoid(x) = 1 / (1 + exp(-x)): accurate in both tails as written (for x << 0 the quotient of
 * 1 by a large number; exp(-x) = inf gives 0, where the true value is below 1e-38).
 */
@inline export function sigmoid4(x: v128): v128 {
  return f32x4.div(splat(1.0), f32x4.add(splat(1.0), exp4(f32x4.neg(x))));
}

/**
 * For sigmoid(x) and 1 - sigmoid(x) together (gradients), from e = exp(-|x|) <= 1 and
 * r = 1 / (1 + e): x >= 0 gives sigmoid r and 1 - sigmoid e r, x < 0 the other way round;
 * their product is e r^2 whatever the sign, with no overflow.
 */
/** sigmoid(x) from e = exp(-|x|) and r = 1 / (1 + e). */
@inline export function sigmoidFrom(x: v128, e: v128, r: v128): v128 {
  return v128.bitselect(r, f32x4.mul(e, r), f32x4.ge(x, splat(0)));
}

/** 1 - sigmoid(x) = sigmoid(-x) from e = exp(-|x|) and r = 1 / (1 + e). */
@inline export function sigmoidcFrom(x: v128, e: v128, r: v128): v128 {
  return v128.bitselect(f32x4.mul(e, r), r, f32x4.ge(x, splat(0)));
}

/** log(1 + e) for e >= 0, accurate for tiny e (Goldberg: log(u) e / (u - 1), u = 1 + e). */
@inline export function log1p4(e: v128): v128 {
  const u = f32x4.add(splat(1.0), e);
  const d = f32x4.sub(u, splat(1.0));
  const r = f32x4.mul(log4(u), f32x4.div(e, d));
  // d == 0: e is below half an ulp of 1 and log1p(e) = e; e = inf: log(u) = inf
  const res = v128.bitselect(e, r, f32x4.eq(d, splat(0)));
  return v128.bitselect(e, res, f32x4.eq(e, splat(Infinity)));
}

/** erf(x) / x = P(x^2) on |x| < 1. */
@inline function erfSmall(s: v128): v128 {
  let p = splat(7.847259257687256e-05);
  p = madd(p, s, splat(-0.0008008189033716917));
  p = madd(p, s, splat(0.005188099108636379));
  p = madd(p, s, splat(-0.026853691786527634));
  p = madd(p, s, splat(0.1128358244895935));
  p = madd(p, s, splat(-0.3761262595653534));
  return madd(p, s, splat(1.1283791065216064));
}

/** erfc(a) for a >= 1 (0 from a ~ 10.1 on): exp(-a^2) t R(t), t = 1/a. */
@inline function erfcTail(a: v128): v128 {
  const t = f32x4.div(splat(1.0), a);
  let r = splat(-0.04480389505624771);
  r = madd(r, t, splat(0.21680748462677002));
  r = madd(r, t, splat(-0.35930460691452026));
  r = madd(r, t, splat(0.04057277739048004));
  r = madd(r, t, splat(0.7280293107032776));
  r = madd(r, t, splat(-1.193063735961914));
  r = madd(r, t, splat(0.8313813209533691));
  r = madd(r, t, splat(-0.08376718312501907));
  r = madd(r, t, splat(-0.27177926898002625));
  r = madd(r, t, splat(-0.0006980277830734849));
  r = madd(r, t, splat(0.5642094016075134));
  return f32x4.mul(f32x4.mul(exp4(f32x4.neg(f32x4.mul(a, a))), t), r);
}

/** erf(x). */
@inline export function erf4(x: v128): v128 {
  const a = f32x4.abs(x);
  const small = f32x4.mul(a, erfSmall(f32x4.mul(a, a)));
  const big = f32x4.sub(splat(1.0), erfcTail(a));
  const r = v128.bitselect(small, big, f32x4.lt(a, splat(1.0)));
  return v128.or(r, v128.and(x, i32x4.splat(0x80000000)));
}

/** erfc(x) = 1 - erf(x), with full relative accuracy in the right tail (x >= 1). */
@inline export function erfc4(x: v128): v128 {
  const a = f32x4.abs(x);
  const small = f32x4.sub(splat(1.0), f32x4.mul(x, erfSmall(f32x4.mul(a, a))));
  const tail = erfcTail(a);
  const big = v128.bitselect(tail, f32x4.sub(splat(2.0), tail), f32x4.gt(x, splat(0)));
  return v128.bitselect(small, big, f32x4.lt(a, splat(1.0)));
}
