// Optimizer steps in torch.optim's order of operations (so float32 results match PyTorch's to
// rounding), and the float64 sum of squares of gradient chunks for clipping. Work unit: elements
// (sumsq: chunks of SUMSQ_CHUNK). Hyperparameters arrive as float64 and are rounded once.
import { madd, splat } from './math';

/** Elements per sumsq chunk (src/backend/ref/optim.ts SUMSQ_CHUNK). */
const SUMSQ_CHUNK: i32 = 65536;

@inline function ld(p: usize, i: i32, tail: bool): v128 {
  return tail ? f32x4.splat(load<f32>(p + (<usize>i << 2))) : v128.load(p + (<usize>i << 2));
}

@inline function st(p: usize, i: i32, v: v128, tail: bool): void {
  if (tail) store<f32>(p + (<usize>i << 2), f32x4.extract_lane(v, 0));
  else v128.store(p + (<usize>i << 2), v);
}

/**
 * torch AdamW: p *= 1 - lr wd; m.lerp_(g, 1 - b1); v = v b2 + (1 - b2) g g;
 * p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
 */
export function adamw(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f64, beta1: f64, beta2: f64, eps: f64,
  weightDecay: f64, bc1: f64, bc2: f64, start: i32, end: i32, scratch: usize): i32 {
  const decay = splat(<f32>(1.0 - lr * weightDecay));
  const w1 = splat(<f32>(1.0 - beta1)), b2 = splat(<f32>beta2), w2 = splat(<f32>(1.0 - beta2));
  const step = splat(<f32>(lr / bc1)), sbc2 = splat(<f32>Math.sqrt(bc2)), ve = splat(<f32>eps);
  let i = start;
  while (i < end) {
    const tail = i + 4 > end;
    const vg = ld(g, i, tail);
    const vp = f32x4.mul(ld(p, i, tail), decay);
    const vm = madd(w1, f32x4.sub(vg, ld(m, i, tail)), ld(m, i, tail));
    const vv = madd(f32x4.mul(vg, vg), w2, f32x4.mul(ld(v, i, tail), b2));
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vv), sbc2), ve);
    st(p, i, f32x4.sub(vp, f32x4.mul(step, f32x4.div(vm, denom))), tail);
    st(m, i, vm, tail);
    st(v, i, vv, tail);
    i += tail ? 1 : 4;
  }
  return 0;
}

/** torch RMSprop (no momentum, not centered): g += wd p; sq = alpha sq + (1 - alpha) g g; p -= lr g / (sqrt(sq) + eps). */
export function rmsprop(p: usize, g: usize, sq: usize, n: i32, lr: f64, alpha: f64, eps: f64, weightDecay: f64,
  start: i32, end: i32, scratch: usize): i32 {
  const va = splat(<f32>alpha), w = splat(<f32>(1.0 - alpha)), ve = splat(<f32>eps);
  const vlr = splat(<f32>lr), wd = splat(<f32>weightDecay);
  let i = start;
  while (i < end) {
    const tail = i + 4 > end;
    const vp = ld(p, i, tail);
    const vg = weightDecay != 0 ? madd(vp, wd, ld(g, i, tail)) : ld(g, i, tail);
    const vs = madd(f32x4.mul(vg, vg), w, f32x4.mul(ld(sq, i, tail), va));
    const avg = f32x4.add(f32x4.sqrt(vs), ve);
    st(p, i, f32x4.sub(vp, f32x4.mul(vlr, f32x4.div(vg, avg))), tail);
    st(sq, i, vs, tail);
    i += tail ? 1 : 4;
  }
  return 0;
}

/** torch SGD (dampening 0, no Nesterov): g += wd p; buf = momentum buf + g; p -= lr buf (buf unused at momentum 0). */
export function sgd(p: usize, g: usize, buf: usize, n: i32, lr: f64, momentum: f64, weightDecay: f64,
  start: i32, end: i32, scratch: usize): i32 {
  const vmo = splat(<f32>momentum), vlr = splat(<f32>lr), wd = splat(<f32>weightDecay);
  let i = start;
  while (i < end) {
    const tail = i + 4 > end;
    const vp = ld(p, i, tail);
    let d = weightDecay != 0 ? madd(vp, wd, ld(g, i, tail)) : ld(g, i, tail);
    if (momentum != 0) {
      d = madd(ld(buf, i, tail), vmo, d);
      st(buf, i, d, tail);
    }
    st(p, i, f32x4.sub(vp, f32x4.mul(vlr, d)), tail);
    i += tail ? 1 : 4;
  }
  return 0;
}

/** out[c] (float64) = sum of x[i]^2 over chunk c of SUMSQ_CHUNK elements, squares in float64. */
export function sumsq(x: usize, n: i32, out: usize, start: i32, end: i32, scratch: usize): i32 {
  for (let c = start; c < end; c++) {
    const i0 = c * SUMSQ_CHUNK, i1 = min(n, i0 + SUMSQ_CHUNK);
    let a0 = f64x2.splat(0), a1 = a0, a2 = a0, a3 = a0;
    let i = i0;
    for (; i + 8 <= i1; i += 8) {
      const v = v128.load(x + (<usize>i << 2)), u = v128.load(x + (<usize>i << 2) + 16);
      const v0 = f64x2.promote_low_f32x4(v), v1 = f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 2, 3));
      const u0 = f64x2.promote_low_f32x4(u), u1 = f64x2.promote_low_f32x4(v128.shuffle<i32>(u, u, 2, 3, 2, 3));
      a0 = f64x2.add(a0, f64x2.mul(v0, v0));
      a1 = f64x2.add(a1, f64x2.mul(v1, v1));
      a2 = f64x2.add(a2, f64x2.mul(u0, u0));
      a3 = f64x2.add(a3, f64x2.mul(u1, u1));
    }
    const s = f64x2.add(f64x2.add(a0, a1), f64x2.add(a2, a3));
    let total = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
    for (; i < i1; i++) {
      const e = <f64>load<f32>(x + (<usize>i << 2));
      total += e * e;
    }
    store<f64>(out + (<usize>c << 3), total);
  }
  return 0;
}
