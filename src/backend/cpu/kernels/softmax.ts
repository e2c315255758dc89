// Softmax family over the last axis of [N, D]; work unit: rows. logsumexp is one pass over the
// row: per lane a running max M and a float64 running sum S of exp(x - M), updated once per block
// of 32 floats (S *= exp(M - M_new) only when a block raises the max), so a row costs one exp
// per element and is read once.
import { splat, exp4 } from './math';
import { loadPartial, storePartial, dotRow, sumRow, maxRow, zeroRow } from './vec';

const NEG_MAX: f32 = -3.4028234663852886e38;
const IGNORE_INDEX: i32 = -100;

@inline function hi2(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 2, 3));
}

/** log(sum(exp(x))) of n floats at p; -inf for an all -inf row, NaN if any NaN. */
function rowLse(p: usize, n: i32): f32 {
  // M starts at -FLT_MAX, not -inf, so that exp(M - M_new) is never exp(-inf + inf)
  let M = splat(NEG_MAX);
  let Slo = f64x2.splat(0), Shi = f64x2.splat(0);
  let j = 0;
  for (; j + 32 <= n; j += 32) {
    const q = p + (<usize>j << 2);
    const b = f32x4.max(
      f32x4.max(f32x4.max(v128.load(q), v128.load(q + 16)), f32x4.max(v128.load(q + 32), v128.load(q + 48))),
      f32x4.max(f32x4.max(v128.load(q + 64), v128.load(q + 80)), f32x4.max(v128.load(q + 96), v128.load(q + 112))));
    const Mn = f32x4.max(M, b);
    if (!i32x4.all_true(f32x4.eq(Mn, M))) {
      const f = exp4(f32x4.sub(M, Mn));
      Slo = f64x2.mul(Slo, f64x2.promote_low_f32x4(f));
      Shi = f64x2.mul(Shi, hi2(f));
      M = Mn;
    }
    let s = f32x4.add(exp4(f32x4.sub(v128.load(q), M)), exp4(f32x4.sub(v128.load(q + 16), M)));
    let t = f32x4.add(exp4(f32x4.sub(v128.load(q + 32), M)), exp4(f32x4.sub(v128.load(q + 48), M)));
    s = f32x4.add(s, f32x4.add(exp4(f32x4.sub(v128.load(q + 64), M)), exp4(f32x4.sub(v128.load(q + 80), M))));
    t = f32x4.add(t, f32x4.add(exp4(f32x4.sub(v128.load(q + 96), M)), exp4(f32x4.sub(v128.load(q + 112), M))));
    s = f32x4.add(s, t);
    Slo = f64x2.add(Slo, f64x2.promote_low_f32x4(s));
    Shi = f64x2.add(Shi, hi2(s));
  }
  // the last < 32 floats one vector at a time, a partial vector padded with -inf
  for (; j < n; j += 4) {
    const q = p + (<usize>j << 2);
    const v = j + 4 <= n ? v128.load(q) : loadPartial(q, n - j, -Infinity);
    const Mn = f32x4.max(M, v);
    const f = exp4(f32x4.sub(M, Mn));
    const e = exp4(f32x4.sub(v, Mn));
    Slo = f64x2.add(f64x2.mul(Slo, f64x2.promote_low_f32x4(f)), f64x2.promote_low_f32x4(e));
    Shi = f64x2.add(f64x2.mul(Shi, hi2(f)), hi2(e));
    M = Mn;
  }
  // combine lanes: lse = m + log(sum_l S_l exp(M_l - m))
  const h = f32x4.max(M, v128.shuffle<i32>(M, M, 2, 3, 0, 1));
  const m = f32x4.extract_lane(f32x4.max(h, v128.shuffle<i32>(h, h, 1, 0, 3, 2)), 0);
  const f = exp4(f32x4.sub(M, splat(m)));
  const lo = f64x2.mul(Slo, f64x2.promote_low_f32x4(f)), hi = f64x2.mul(Shi, hi2(f));
  const total = (f64x2.extract_lane(lo, 0) + f64x2.extract_lane(lo, 1)) + (f64x2.extract_lane(hi, 0) + f64x2.extract_lane(hi, 1));
  return <f32>(<f64>m + Math.log(total));
}

/** out = exp(x - m) for n floats; returns the sum. */
@inline function expRow(x: usize, out: usize, n: i32, m: f32): f64 {
  const vm = splat(m);
  let total: f64 = 0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const o = <usize>j << 2;
    const e0 = exp4(f32x4.sub(v128.load(x + o), vm)), e1 = exp4(f32x4.sub(v128.load(x + o + 16), vm));
    const e2 = exp4(f32x4.sub(v128.load(x + o + 32), vm)), e3 = exp4(f32x4.sub(v128.load(x + o + 48), vm));
    v128.store(out + o, e0); v128.store(out + o + 16, e1); v128.store(out + o + 32, e2); v128.store(out + o + 48, e3);
    const s = f32x4.add(f32x4.add(e0, e1), f32x4.add(e2, e3));
    total += <f64>((f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1)) + (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3)));
  }
  for (; j < n; j += 4) {
    const o = <usize>j << 2;
    const k = min(4, n - j);
    const e = exp4(f32x4.sub(k == 4 ? v128.load(x + o) : loadPartial(x + o, k, -Infinity), vm));
    if (k == 4) v128.store(out + o, e); else storePartial(out + o, e, k);
    total += <f64>((f32x4.extract_lane(e, 0) + f32x4.extract_lane(e, 1)) + (f32x4.extract_lane(e, 2) + f32x4.extract_lane(e, 3)));
  }
  return total;
}

/** p[j] *= s for n floats. */
@inline function scaleRow(p: usize, n: i32, s: f32): void {
  const vs = splat(s);
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(p + (<usize>j << 2), f32x4.mul(v128.load(p + (<usize>j << 2)), vs));
  for (; j < n; j++) store<f32>(p + (<usize>j << 2), load<f32>(p + (<usize>j << 2)) * s);
}

/** out[r] = softmax(x[r]): max pass, exp-and-sum pass (one exp per element), scale pass. */
export function softmax(x: usize, out: usize, N: i32, D: i32, start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const m = maxRow(x + off, D);
    const s = expRow(x + off, out + off, D, m);
    scaleRow(out + off, D, <f32>(1.0 / s));
  }
  return 0;
}

/** out[r] = x[r] - logsumexp(x[r]). */
export function log_softmax(x: usize, out: usize, N: i32, D: i32, start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const lse = splat(rowLse(x + off, D));
    const px = x + off, po = out + off;
    let j = 0;
    for (; j + 4 <= D; j += 4) v128.store(po + (<usize>j << 2), f32x4.sub(v128.load(px + (<usize>j << 2)), lse));
    for (; j < D; j++) store<f32>(po + (<usize>j << 2), load<f32>(px + (<usize>j << 2)) - f32x4.extract_lane(lse, 0));
  }
  return 0;
}

/** dx = y (dy - sum(dy y)), y the softmax output. */
export function softmax_grad(y: usize, dy: usize, dx: usize, N: i32, D: i32, start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const py = y + off, pd = dy + off, px = dx + off;
    const dot = splat(dotRow(py, pd, D));
    let j = 0;
    for (; j + 4 <= D; j += 4) {
      const o = <usize>j << 2;
      v128.store(px + o, f32x4.mul(v128.load(py + o), f32x4.sub(v128.load(pd + o), dot)));
    }
    for (; j < D; j++) {
      const o = <usize>j << 2;
      store<f32>(px + o, load<f32>(py + o) * (load<f32>(pd + o) - f32x4.extract_lane(dot, 0)));
    }
  }
  return 0;
}

/** dx = dy - exp(y) sum(dy), y the log_softmax output. */
export function log_softmax_grad(y: usize, dy: usize, dx: usize, N: i32, D: i32, start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const py = y + off, pd = dy + off, px = dx + off;
    const s = splat(sumRow(pd, D));
    let j = 0;
    for (; j < D; j += 4) {
      const o = <usize>j << 2;
      const k = min(4, D - j);
      const vy = k == 4 ? v128.load(py + o) : loadPartial(py + o, k, 0);
      const vd = k == 4 ? v128.load(pd + o) : loadPartial(pd + o, k, 0);
      const v = f32x4.sub(vd, f32x4.mul(exp4(vy), s));
      if (k == 4) v128.store(px + o, v); else storePartial(px + o, v, k);
    }
  }
  return 0;
}

/** Error 1 unless targets[start..end) are in [0, V) or IGNORE_INDEX. */
@inline function checkTargets(targets: usize, V: i32, start: i32, end: i32): bool {
  for (let r = start; r < end; r++) {
    const t = load<i32>(targets + (<usize>r << 2));
    if (t != IGNORE_INDEX && (t < 0 || t >= V)) return false;
  }
  return true;
}

/** out[r] = logits[r, t] - logsumexp(logits[r]), t = targets[r]; t = -100 gives 0. */
export function logsoftmax_gather(logits: usize, targets: usize, out: usize, N: i32, V: i32, start: i32, end: i32, scratch: usize): i32 {
  if (!checkTargets(targets, V, start, end)) return 1;
  for (let r = start; r < end; r++) {
    const t = load<i32>(targets + (<usize>r << 2));
    const row = logits + ((<usize>r * <usize>V) << 2);
    store<f32>(out + (<usize>r << 2), t == IGNORE_INDEX ? 0 : load<f32>(row + (<usize>t << 2)) - rowLse(row, V));
  }
  return 0;
}

/** dlogits[r] = dy[r] (onehot(t) - softmax(logits[r])); rows with t = -100 get 0. */
export function logsoftmax_gather_grad(logits: usize, targets: usize, dy: usize, dlogits: usize, N: i32, V: i32, start: i32, end: i32, scratch: usize): i32 {
  if (!checkTargets(targets, V, start, end)) return 1;
  for (let r = start; r < end; r++) {
    const t = load<i32>(targets + (<usize>r << 2));
    const off = (<usize>r * <usize>V) << 2;
    const px = logits + off, pd = dlogits + off;
    if (t == IGNORE_INDEX) {
      zeroRow(pd, V);
      continue;
    }
    const g = load<f32>(dy + (<usize>r << 2));
    const lse = splat(rowLse(px, V)), vg = splat(-g);
    let j = 0;
    for (; j + 16 <= V; j += 16) {
      const o = <usize>j << 2;
      v128.store(pd + o, f32x4.mul(vg, exp4(f32x4.sub(v128.load(px + o), lse))));
      v128.store(pd + o + 16, f32x4.mul(vg, exp4(f32x4.sub(v128.load(px + o + 16), lse))));
      v128.store(pd + o + 32, f32x4.mul(vg, exp4(f32x4.sub(v128.load(px + o + 32), lse))));
      v128.store(pd + o + 48, f32x4.mul(vg, exp4(f32x4.sub(v128.load(px + o + 48), lse))));
    }
    for (; j < V; j += 4) {
      const o = <usize>j << 2;
      const k = min(4, V - j);
      const v = f32x4.mul(vg, exp4(f32x4.sub(k == 4 ? v128.load(px + o) : loadPartial(px + o, k, -Infinity), lse)));
      if (k == 4) v128.store(pd + o, v); else storePartial(pd + o, v, k);
    }
    const pt = pd + (<usize>t << 2);
    store<f32>(pt, load<f32>(pt) + g);
  }
  return 0;
}
