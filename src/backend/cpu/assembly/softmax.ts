// Softmax family over the last axis of [N, D]; work unit: rows. Every kernel does one exp per
// element: a max pass (pmax, cheap), then exp(x - max) summed in float64 per 16 elements, and
// where an output row is written, one more pass over it while it is still in cache. A one-pass
// online logsumexp (running max and rescaled sum) measured 1.7x slower on [512, 50257]: its
// per-block max, rescale test and float64 updates cost more than re-reading a row from L2.
import { splat, exp4 } from './math';
import { hsum4, loadPartial, storePartial, dotRow, sumRow, maxRow, zeroRow } from './vec';

const IGNORE_INDEX: i32 = -100;

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
    total += <f64>hsum4(s);
  }
  for (; j < n; j += 4) {
    const o = <usize>j << 2;
    const k = min(4, n - j);
    const e = exp4(f32x4.sub(k == 4 ? v128.load(x + o) : loadPartial(x + o, k, -Infinity), vm));
    if (k == 4) v128.store(out + o, e); else storePartial(out + o, e, k);
    total += <f64>hsum4(e);
  }
  return total;
}

/** sum(exp(x - m)) over n floats, without storing. */
function sumExpRow(x: usize, n: i32, m: f32): f64 {
  const vm = splat(m);
  let total: f64 = 0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const o = <usize>j << 2;
    const s = f32x4.add(
      f32x4.add(exp4(f32x4.sub(v128.load(x + o), vm)), exp4(f32x4.sub(v128.load(x + o + 16), vm))),
      f32x4.add(exp4(f32x4.sub(v128.load(x + o + 32), vm)), exp4(f32x4.sub(v128.load(x + o + 48), vm))));
    total += <f64>hsum4(s);
  }
  for (; j < n; j += 4) {
    const o = <usize>j << 2;
    const k = min(4, n - j);
    const e = exp4(f32x4.sub(k == 4 ? v128.load(x + o) : loadPartial(x + o, k, -Infinity), vm));
    total += <f64>hsum4(e);
  }
  return total;
}

/** logsumexp of a row by a max pass and an exp-sum pass (the row is re-read from cache). */
function rowLse(p: usize, n: i32): f32 {
  const m = maxRow(p, n);
  if (m == -Infinity) return -Infinity; // an all -inf row (exp(x - m) would be NaN)
  return <f32>(<f64>m + Math.log(sumExpRow(p, n, m)));
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

/** k lanes at j of dx = dy - exp(y) s (k = 4 inlines to plain vector code). */
@inline function logSoftmaxGradStep(py: usize, pd: usize, px: usize, s: v128, j: i32, k: i32): void {
  const o = <usize>j << 2;
  const vy = k == 4 ? v128.load(py + o) : loadPartial(py + o, k, 0);
  const vd = k == 4 ? v128.load(pd + o) : loadPartial(pd + o, k, 0);
  const v = f32x4.sub(vd, f32x4.mul(exp4(vy), s));
  if (k == 4) v128.store(px + o, v); else storePartial(px + o, v, k);
}

/** dx = dy - exp(y) sum(dy), y the log_softmax output. */
export function log_softmax_grad(y: usize, dy: usize, dx: usize, N: i32, D: i32, start: i32, end: i32, scratch: usize): i32 {
  for (let r = start; r < end; r++) {
    const off = (<usize>r * <usize>D) << 2;
    const py = y + off, pd = dy + off, px = dx + off;
    const s = splat(sumRow(pd, D));
    let j = 0;
    for (; j + 4 <= D; j += 4) logSoftmaxGradStep(py, pd, px, s, j, 4);
    if (j < D) logSoftmaxGradStep(py, pd, px, s, j, D - j);
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
    // one exp per element: max pass, exp(x - max) into dlogits with its sum, then one scale
    // pass while the row is still in cache
    const g = load<f32>(dy + (<usize>r << 2));
    const m = maxRow(px, V);
    const s = expRow(px, pd, V, m);
    scaleRow(pd, V, <f32>(<f64>-g / s));
    const pt = pd + (<usize>t << 2);
    store<f32>(pt, load<f32>(pt) + g);
  }
  return 0;
}
