// WGSL shared by the kernels: float32 math with the CPU kernels' accuracy and edge cases
// (ported from src/backend/cpu/assembly/math.ts: Cephes expf/logf, tanh, sigmoid, erf/erfc
// polynomials), workgroup reductions, and the 2D grid that lifts the 65535-workgroup limit.

/** Workgroup size of the elementwise and row kernels. */
export const WG = 256;

/**
 * Workgroups for `count` work items of `per` each, as a 2D grid (x <= 65535); a kernel recovers
 * its linear index with `linearGroup(wid, nwg)`.
 */
export function grid(count: number, per = WG): [number, number] {
  const groups = Math.ceil(count / per);
  if (groups <= 65535) return [groups, 1];
  const gy = Math.ceil(groups / 65535);
  return [Math.ceil(groups / gy), gy];
}

/** Entry-point builtins and the linear workgroup index of a 2D grid. */
export const ENTRY =
  '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32';
export const GROUP = '(wid.y * nwg.x + wid.x)';

/** The body of a one-thread-per-element kernel over P.n elements: `i` is the element, `stmt` the work. */
export function perElement(stmt: string, helpers = ''): string {
  return `${helpers}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let i = ${GROUP} * ${WG}u + li;
  if (i >= P.n) { return; }
  ${stmt}
}`;
}

/** `P.name[i]` for a u32x8 parameter. */
export function at(name: string, i: string): string {
  return `P.${name}[(${i}) / 4u][(${i}) % 4u]`;
}

/** Special values made at run time (a constant inf or NaN is a WGSL compile error). */
export const SPECIAL = /* wgsl */ `
fn bits_f32(b: u32) -> f32 { var v = b; return bitcast<f32>(v); }
fn neg_inf() -> f32 { return bits_f32(0xff800000u); }
fn pos_inf() -> f32 { return bits_f32(0x7f800000u); }
fn nan_f32() -> f32 { return bits_f32(0x7fc00000u); }
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn is_inf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }
// max / min that propagate NaN, like torch.maximum / minimum.
fn maxn(a: f32, b: f32) -> f32 { return select(max(a, b), a + b, is_nan(a) || is_nan(b)); }
fn minn(a: f32, b: f32) -> f32 { return select(min(a, b), a + b, is_nan(a) || is_nan(b)); }
`;

/** exp, log, tanh, sigmoid, log1p, erf, erfc in float32 (needs SPECIAL). */
export const MATH = /* wgsl */ `
fn exp_(x0: f32) -> f32 {
  if (is_nan(x0)) { return x0; }
  let x = clamp(x0, -104.0, 88.8);
  let n = round(x * 1.44269504088896341);
  var r = fma(n, -0.693359375, x);
  r = fma(n, 2.12194440e-4, r);
  var p = 1.9875691500e-4;
  p = fma(p, r, 1.3981999507e-3);
  p = fma(p, r, 8.3334519073e-3);
  p = fma(p, r, 4.1665795894e-2);
  p = fma(p, r, 1.6666665459e-1);
  p = fma(p, r, 5.0000001201e-1);
  p = fma(p, r * r, r + 1.0);
  let ni = i32(n);
  let n1 = ni >> 1u;
  let n2 = ni - n1;
  return p * bitcast<f32>(u32(n1 + 127) << 23u) * bitcast<f32>(u32(n2 + 127) << 23u);
}

fn log_(x: f32) -> f32 {
  if (is_nan(x) || x < 0.0) { return nan_f32(); }
  if (x == 0.0) { return neg_inf(); }
  if (is_inf(x)) { return x; }
  let tiny = x < 1.17549435e-38;
  let xs = select(x, x * 8388608.0, tiny);
  var e = i32(bitcast<u32>(xs) >> 23u) - 126;
  if (tiny) { e -= 23; }
  var m = bitcast<f32>((bitcast<u32>(xs) & 0x007fffffu) | 0x3f000000u);
  if (m < 0.707106781186547524) { e -= 1; m = m + m - 1.0; } else { m = m - 1.0; }
  let ef = f32(e);
  let z = m * m;
  var y = 7.0376836292e-2;
  y = fma(y, m, -1.1514610310e-1);
  y = fma(y, m, 1.1676998740e-1);
  y = fma(y, m, -1.2420140846e-1);
  y = fma(y, m, 1.4249322787e-1);
  y = fma(y, m, -1.6668057665e-1);
  y = fma(y, m, 2.0000714765e-1);
  y = fma(y, m, -2.4999993993e-1);
  y = fma(y, m, 3.3333331174e-1);
  y = y * m * z;
  y = fma(ef, -2.12194440e-4, y);
  y = fma(z, -0.5, y);
  return fma(ef, 0.693359375, m + y);
}

fn tanh_(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.625) {
    let z = x * x;
    var p = -5.70498872745e-3;
    p = fma(p, z, 2.06390887954e-2);
    p = fma(p, z, -5.37397155531e-2);
    p = fma(p, z, 1.33314422036e-1);
    p = fma(p, z, -3.33332819422e-1);
    return fma(p * z, x, x);
  }
  if (is_nan(x)) { return x; }
  let t = 1.0 - 2.0 / (exp_(a + a) + 1.0);
  return select(t, -t, x < 0.0);
}

// 1 / (1 + exp(-x)) from e = exp(-|x|) <= 1: full relative accuracy in both tails.
fn sigmoid_(x: f32) -> f32 {
  let e = exp_(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, x >= 0.0);
}

// log(1 + e) for e >= 0, accurate for tiny e (Goldberg).
fn log1p_(e: f32) -> f32 {
  let u = 1.0 + e;
  let d = u - 1.0;
  if (d == 0.0 || is_inf(e)) { return e; }
  return log_(u) * (e / d);
}

fn erf_small(s: f32) -> f32 {
  var p = 7.847259257687256e-05;
  p = fma(p, s, -0.0008008189033716917);
  p = fma(p, s, 0.005188099108636379);
  p = fma(p, s, -0.026853691786527634);
  p = fma(p, s, 0.1128358244895935);
  p = fma(p, s, -0.3761262595653534);
  return fma(p, s, 1.1283791065216064);
}

fn erfc_tail(a: f32) -> f32 {
  let t = 1.0 / a;
  var r = -0.04480389505624771;
  r = fma(r, t, 0.21680748462677002);
  r = fma(r, t, -0.35930460691452026);
  r = fma(r, t, 0.04057277739048004);
  r = fma(r, t, 0.7280293107032776);
  r = fma(r, t, -1.193063735961914);
  r = fma(r, t, 0.8313813209533691);
  r = fma(r, t, -0.08376718312501907);
  r = fma(r, t, -0.27177926898002625);
  r = fma(r, t, -0.0006980277830734849);
  r = fma(r, t, 0.5642094016075134);
  return exp_(-(a * a)) * t * r;
}

fn erf_(x: f32) -> f32 {
  let a = abs(x);
  let r = select(1.0 - erfc_tail(a), a * erf_small(a * a), a < 1.0);
  return select(r, -r, x < 0.0);
}

fn erfc_(x: f32) -> f32 {
  let a = abs(x);
  if (a < 1.0) { return 1.0 - x * erf_small(a * a); }
  let t = erfc_tail(a);
  return select(2.0 - t, t, x > 0.0);
}
`;

/**
 * Workgroup reductions over WG threads (call from uniform control flow, every thread):
 * wg_sum and wg_max (NaN-propagating). Needs SPECIAL.
 */
export const REDUCE = /* wgsl */ `
var<workgroup> red_buf: array<f32, ${WG}>;
fn wg_sum(v: f32, li: u32) -> f32 {
  red_buf[li] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red_buf[li] += red_buf[li + s]; }
    workgroupBarrier();
  }
  let r = red_buf[0];
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, li: u32) -> f32 {
  red_buf[li] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red_buf[li] = maxn(red_buf[li], red_buf[li + s]); }
    workgroupBarrier();
  }
  let r = red_buf[0];
  workgroupBarrier();
  return r;
}
`;
