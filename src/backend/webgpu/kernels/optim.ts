// Optimizer steps on the device, one thread per parameter: torch.optim.AdamW, RMSprop (no
// momentum, not centered) and SGD (dampening 0, no Nesterov); formulas in src/backend/ref/optim.ts.
import type { KernelArgs } from '../../../core/kernels.js';
import { grid, perElement } from '../wgsl.js';
import { buf, f32Only, type Ctx } from './context.js';

export function adamw(ctx: Ctx, a: KernelArgs['adamw']): void {
  f32Only('adamw', a.p);
  const k = ctx.rt.kernel('adamw', () => ({
    name: 'adamw',
    // 1 - beta comes from the host: in float32, 1 - 0.999 loses 5 digits.
    params: [
      ['n', 'u32'],
      ['lr', 'f32'],
      ['beta1', 'f32'],
      ['beta2', 'f32'],
      ['one_b1', 'f32'],
      ['one_b2', 'f32'],
      ['eps', 'f32'],
      ['wd', 'f32'],
      ['bc1', 'f32'],
      ['bc2', 'f32'],
    ],
    buffers: [
      ['p', 'f32', 'read_write'],
      ['g', 'f32', 'read'],
      ['m', 'f32', 'read_write'],
      ['v', 'f32', 'read_write'],
    ],
    // p -= lr wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr (m / bc1) / (sqrt(v / bc2) + eps)
    body: perElement(`let gi = g[i];
  var pi = p[i];
  pi -= P.lr * P.wd * pi;
  let mi = P.beta1 * m[i] + P.one_b1 * gi;
  let vi = P.beta2 * v[i] + P.one_b2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - (P.lr * (mi / P.bc1)) / (sqrt(vi / P.bc2) + P.eps);`),
  }));
  ctx.rt.run(
    k,
    [buf(a.p), buf(a.g), buf(a.m), buf(a.v)],
    [a.n, a.lr, a.beta1, a.beta2, 1 - a.beta1, 1 - a.beta2, a.eps, a.weightDecay, a.bc1, a.bc2],
    grid(a.n),
  );
}

export function rmsprop(ctx: Ctx, a: KernelArgs['rmsprop']): void {
  f32Only('rmsprop', a.p);
  const k = ctx.rt.kernel('rmsprop', () => ({
    name: 'rmsprop',
    params: [
      ['n', 'u32'],
      ['lr', 'f32'],
      ['alpha', 'f32'],
      ['one_alpha', 'f32'],
      ['eps', 'f32'],
      ['wd', 'f32'],
    ],
    buffers: [
      ['p', 'f32', 'read_write'],
      ['g', 'f32', 'read'],
      ['sq', 'f32', 'read_write'],
    ],
    // g += wd p; sq = alpha sq + (1 - alpha) g^2; p -= lr g / (sqrt(sq) + eps)
    body: perElement(`let gi = g[i] + P.wd * p[i];
  let s = P.alpha * sq[i] + P.one_alpha * gi * gi;
  sq[i] = s;
  p[i] = p[i] - (P.lr * gi) / (sqrt(s) + P.eps);`),
  }));
  ctx.rt.run(k, [buf(a.p), buf(a.g), buf(a.sq)], [a.n, a.lr, a.alpha, 1 - a.alpha, a.eps, a.weightDecay], grid(a.n));
}

export function sgd(ctx: Ctx, a: KernelArgs['sgd']): void {
  f32Only('sgd', a.p);
  if (a.momentum !== 0 && a.buf === null) throw new Error('sgd: momentum is not 0 but no momentum buffer was given');
  const k = ctx.rt.kernel('sgd', () => ({
    name: 'sgd',
    params: [
      ['n', 'u32'],
      ['lr', 'f32'],
      ['momentum', 'f32'],
      ['wd', 'f32'],
    ],
    buffers: [
      ['p', 'f32', 'read_write'],
      ['g', 'f32', 'read'],
      ['mbuf', 'f32', 'read_write'],
    ],
    // g += wd p; buf = momentum buf + g (momentum != 0); p -= lr buf
    body: perElement(`var d = g[i] + P.wd * p[i];
  if (P.momentum != 0.0) { d = P.momentum * mbuf[i] + d; mbuf[i] = d; }
  p[i] = p[i] - P.lr * d;`),
  }));
  ctx.rt.run(k, [buf(a.p), buf(a.g), a.buf ? buf(a.buf) : ctx.sink], [a.n, a.lr, a.momentum, a.weightDecay], grid(a.n));
}
