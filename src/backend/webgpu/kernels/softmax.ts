// Softmax family over the last axis of [N, D], one workgroup per row: softmax / log-softmax and
// their backward, and the log-softmax fused with the target gather (token log-probs over the
// vocabulary without an [N, V] output) and its backward. Row log-sum-exps use the online form
// (one pass keeps a running max and a sum rescaled to it; Milakov & Gimelshein 2018).
import type { KernelArgs } from '../../../core/kernels.js';
import { checkIds } from '../storage.js';
import { ENTRY, GROUP, MATH, REDUCE, SPECIAL, WG, grid } from '../wgsl.js';
import { buf, f32Only, type Ctx } from './context.js';

/** Row log-sum-exp of x[row * P.D ..] over the workgroup: `row_lse(base, li)`. */
const LSE = /* wgsl */ `
var<workgroup> lse_m: array<f32, ${WG}>;
var<workgroup> lse_s: array<f32, ${WG}>;
fn row_lse(base: u32, li: u32) -> f32 {
  let ninf = neg_inf();
  var m = ninf;
  var s = 0.0;
  for (var j = li; j < P.D; j += ${WG}u) {
    let v = x[base + j];
    if (v > m) { s = s * exp(m - v) + 1.0; m = v; }
    else if (v != ninf) { s += exp(v - m); }
  }
  lse_m[li] = m;
  lse_s[li] = s;
  workgroupBarrier();
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    if (li < st) {
      let m1 = lse_m[li];
      let m2 = lse_m[li + st];
      let mm = maxn(m1, m2);
      if (mm != ninf) {
        lse_s[li] = lse_s[li] * exp(m1 - mm) + lse_s[li + st] * exp(m2 - mm);
        lse_m[li] = mm;
      }
    }
    workgroupBarrier();
  }
  let mt = lse_m[0];
  let st = lse_s[0];
  workgroupBarrier();
  return select(mt + log(st), ninf, mt == ninf);
}
`;

function rowKernelBody(stmt: string): string {
  return `${SPECIAL}${MATH}${REDUCE}${LSE}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let r = ${GROUP};
  let valid = r < P.N;
  let base = select(0u, r * P.D, valid);
  ${stmt}
}`;
}

export function softmax(ctx: Ctx, a: KernelArgs['softmax']): void {
  f32Only('softmax', a.x);
  const k = ctx.rt.kernel(`softmax_${a.log}`, () => ({
    name: a.log ? 'logSoftmax' : 'softmax',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    body: rowKernelBody(`let l = row_lse(base, li);
  if (!valid) { return; }
  for (var j = li; j < P.D; j += ${WG}u) { out[base + j] = ${a.log ? 'x[base + j] - l' : 'exp_(x[base + j] - l)'}; }`),
  }));
  ctx.rt.run(k, [buf(a.x), buf(a.out)], [a.N, a.D], grid(a.N, 1));
}

export function softmaxGrad(ctx: Ctx, a: KernelArgs['softmaxGrad']): void {
  f32Only('softmaxGrad', a.y);
  // softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy).
  const k = ctx.rt.kernel(`softmax_grad_${a.log}`, () => ({
    name: a.log ? 'logSoftmax backward' : 'softmax backward',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
    ],
    buffers: [
      ['y', 'f32', 'read'],
      ['dy', 'f32', 'read'],
      ['dx', 'f32', 'read_write'],
    ],
    body: `${SPECIAL}${MATH}${REDUCE}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let r = ${GROUP};
  let valid = r < P.N;
  let base = select(0u, r * P.D, valid);
  var acc = 0.0;
  if (valid) {
    for (var j = li; j < P.D; j += ${WG}u) { acc += ${a.log ? 'dy[base + j]' : 'dy[base + j] * y[base + j]'}; }
  }
  let s = wg_sum(acc, li);
  if (!valid) { return; }
  for (var j = li; j < P.D; j += ${WG}u) {
    dx[base + j] = ${a.log ? 'dy[base + j] - exp_(y[base + j]) * s' : 'y[base + j] * (dy[base + j] - s)'};
  }
}`,
  }));
  ctx.rt.run(k, [buf(a.y), buf(a.dy), buf(a.dx)], [a.N, a.D], grid(a.N, 1));
}

/**
 * out[r] = logits[r, t] - logsumexp(logits[r]), t = targets[r]; -100 gives 0. Targets known on
 * the host are checked there; a target made on the device outside [0, V) also gives 0.
 */
export function logSoftmaxGather(ctx: Ctx, a: KernelArgs['logSoftmaxGather']): void {
  f32Only('logSoftmaxGather', a.logits);
  checkIds('logsoftmaxGather', a.targets, a.N, a.V, true, 'target');
  const k = ctx.rt.kernel('logsoftmax_gather', () => ({
    name: 'logSoftmaxGather',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['targets', 'i32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    body: rowKernelBody(`let l = row_lse(base, li);
  if (!valid || li != 0u) { return; }
  let t = targets[r];
  out[r] = select(0.0, x[base + u32(t)] - l, t >= 0 && t < i32(P.D));`),
  }));
  ctx.rt.run(k, [buf(a.logits), buf(a.targets), buf(a.out)], [a.N, a.V], grid(a.N, 1));
}

/** dlogits[r] = dy[r] (onehot(t) - softmax(logits[r])); rows with t = -100 (or a bad t) get 0. */
export function logSoftmaxGatherGrad(ctx: Ctx, a: KernelArgs['logSoftmaxGatherGrad']): void {
  f32Only('logSoftmaxGatherGrad', a.logits);
  checkIds('logsoftmaxGatherGrad', a.targets, a.N, a.V, true, 'target');
  const k = ctx.rt.kernel('logsoftmax_gather_grad', () => ({
    name: 'logSoftmaxGather backward',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['targets', 'i32', 'read'],
      ['dy', 'f32', 'read'],
      ['dl', 'f32', 'read_write'],
    ],
    body: rowKernelBody(`let l = row_lse(base, li);
  if (!valid) { return; }
  let t = targets[r];
  let ok = t >= 0 && t < i32(P.D);
  let g = select(0.0, dy[r], ok);
  for (var j = li; j < P.D; j += ${WG}u) {
    var v = -g * exp(x[base + j] - l);
    if (ok && j == u32(t)) { v += g; }
    dl[base + j] = v;
  }`),
  }));
  ctx.rt.run(k, [buf(a.logits), buf(a.targets), buf(a.dy), buf(a.dlogits)], [a.N, a.V], grid(a.N, 1));
}
