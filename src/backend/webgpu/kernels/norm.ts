// LayerNorm and RMSNorm over the last axis of [N, D]: forward and input gradient with one
// workgroup per row; weight gradients as column sums over chunks of rows, then a sum over the
// chunks. Absent weights / biases bind a stand-in buffer and a 0 flag.
import type { KernelArgs } from '../../../core/kernels.js';
import { ENTRY, GROUP, REDUCE, SPECIAL, WG, grid } from '../wgsl.js';
import { reduceBuffers } from './reduce.js';
import { buf, bufOr, f32Only, release, scratch, type Ctx } from './context.js';

function rowBody(stmt: string): string {
  return `${SPECIAL}${REDUCE}
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let r = ${GROUP};
  let valid = r < P.N;
  let base = select(0u, r * P.D, valid);
  let D = select(0u, P.D, valid);
  let fd = f32(P.D);
  ${stmt}
}`;
}

export function layerNorm(ctx: Ctx, a: KernelArgs['layerNorm']): void {
  f32Only('layerNorm', a.x);
  const k = ctx.rt.kernel('layernorm', () => ({
    name: 'layerNorm',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
      ['eps', 'f32'],
      ['has_w', 'u32'],
      ['has_b', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['w', 'f32', 'read'],
      ['b', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
      ['mean', 'f32', 'read_write'],
      ['rstd', 'f32', 'read_write'],
    ],
    // (x - mean) rstd w + b, rstd = 1 / sqrt(var + eps), biased variance (torch.nn.LayerNorm)
    body: rowBody(`var s = 0.0;
  for (var j = li; j < D; j += ${WG}u) { s += x[base + j]; }
  let mu = wg_sum(s, li) / fd;
  var v = 0.0;
  for (var j = li; j < D; j += ${WG}u) { let d = x[base + j] - mu; v += d * d; }
  let rs = 1.0 / sqrt(wg_sum(v, li) / fd + P.eps);
  if (!valid) { return; }
  for (var j = li; j < D; j += ${WG}u) {
    var y = (x[base + j] - mu) * rs;
    if (P.has_w == 1u) { y *= w[j]; }
    if (P.has_b == 1u) { y += b[j]; }
    out[base + j] = y;
  }
  if (li == 0u) { mean[r] = mu; rstd[r] = rs; }`),
  }));
  ctx.rt.run(
    k,
    [buf(a.x), bufOr(ctx, a.w), bufOr(ctx, a.b), buf(a.out), buf(a.mean), buf(a.rstd)],
    [a.N, a.D, a.eps, a.w ? 1 : 0, a.b ? 1 : 0],
    grid(a.N, 1),
  );
}

export function layerNormGrad(ctx: Ctx, a: KernelArgs['layerNormGrad']): void {
  f32Only('layerNormGrad', a.x);
  const k = ctx.rt.kernel('layernorm_grad', () => ({
    name: 'layerNorm backward',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
      ['has_w', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['w', 'f32', 'read'],
      ['mean', 'f32', 'read'],
      ['rstd', 'f32', 'read'],
      ['dy', 'f32', 'read'],
      ['dx', 'f32', 'read_write'],
    ],
    // g = dy w, xhat = (x - mean) rstd: dx = rstd (g - mean(g) - xhat mean(g xhat))
    body: rowBody(`let mu = select(0.0, mean[r], valid);
  let rs = select(0.0, rstd[r], valid);
  var sg = 0.0;
  var sgx = 0.0;
  for (var j = li; j < D; j += ${WG}u) {
    var g = dy[base + j];
    if (P.has_w == 1u) { g *= w[j]; }
    sg += g;
    sgx += g * (x[base + j] - mu) * rs;
  }
  let mg = wg_sum(sg, li) / fd;
  let mgx = wg_sum(sgx, li) / fd;
  if (!valid) { return; }
  for (var j = li; j < D; j += ${WG}u) {
    var g = dy[base + j];
    if (P.has_w == 1u) { g *= w[j]; }
    dx[base + j] = rs * (g - mg - (x[base + j] - mu) * rs * mgx);
  }`),
  }));
  ctx.rt.run(
    k,
    [buf(a.x), bufOr(ctx, a.w), buf(a.mean), buf(a.rstd), buf(a.dy), buf(a.dx)],
    [a.N, a.D, a.w ? 1 : 0],
    grid(a.N, 1),
  );
}

/** Rows per chunk of the weight-gradient column sums. */
const CHUNK = 64;

/**
 * Column sums over chunks of rows: pw[c, j] = sum_r xhat dy (or x rstd dy for RMSNorm), pb[c, j] =
 * sum_r dy; then the chunks are summed into dw, db. `kind` picks LayerNorm or RMSNorm.
 */
function weightGrad(
  ctx: Ctx,
  kind: 'ln' | 'rms',
  x: GPUBuffer,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  dy: GPUBuffer,
  dw: GPUBuffer | null,
  db: GPUBuffer | null,
  N: number,
  D: number,
): void {
  if (D === 0 || (!dw && !db)) return;
  const k = ctx.rt.kernel(`norm_wgrad_${kind}`, () => ({
    name: `${kind === 'ln' ? 'layerNorm' : 'rmsNorm'} weight gradient`,
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
      ['chunk', 'u32'],
      ['n', 'u32'],
      ['has_w', 'u32'],
      ['has_b', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['mean', 'f32', 'read'],
      ['rstd', 'f32', 'read'],
      ['dy', 'f32', 'read'],
      ['pw', 'f32', 'read_write'],
      ['pb', 'f32', 'read_write'],
    ],
    body: `
@compute @workgroup_size(${WG})
fn main(${ENTRY}) {
  let t = ${GROUP} * ${WG}u + li;
  if (t >= P.n) { return; }
  let j = t % P.D;
  let c = t / P.D;
  let hi = min(P.N, (c + 1u) * P.chunk);
  var sw = 0.0;
  var sb = 0.0;
  for (var r = c * P.chunk; r < hi; r++) {
    let g = dy[r * P.D + j];
    sw += ${kind === 'ln' ? '(x[r * P.D + j] - mean[r])' : 'x[r * P.D + j]'} * rstd[r] * g;
    sb += g;
  }
  if (P.has_w == 1u) { pw[t] = sw; }
  if (P.has_b == 1u) { pb[t] = sb; }
}`,
  }));
  const chunks = Math.max(1, Math.ceil(N / CHUNK));
  const direct = chunks === 1;
  const pw = dw ? (direct ? dw : scratch(ctx, chunks * D)) : ctx.sink;
  const pb = db ? (direct ? db : scratch(ctx, chunks * D)) : ctx.sink;
  ctx.rt.run(k, [x, mean, rstd, dy, pw, pb], [N, D, CHUNK, chunks * D, dw ? 1 : 0, db ? 1 : 0], grid(chunks * D));
  if (direct) return;
  if (dw) {
    reduceBuffers(ctx, 'sum', pw, dw, 1, chunks, D);
    release(ctx, pw);
  }
  if (db) {
    reduceBuffers(ctx, 'sum', pb, db, 1, chunks, D);
    release(ctx, pb);
  }
}

export function layerNormWGrad(ctx: Ctx, a: KernelArgs['layerNormWGrad']): void {
  f32Only('layerNormWGrad', a.x);
  weightGrad(
    ctx,
    'ln',
    buf(a.x),
    buf(a.mean),
    buf(a.rstd),
    buf(a.dy),
    a.dw ? buf(a.dw) : null,
    a.db ? buf(a.db) : null,
    a.N,
    a.D,
  );
}

export function rmsNorm(ctx: Ctx, a: KernelArgs['rmsNorm']): void {
  f32Only('rmsNorm', a.x);
  const k = ctx.rt.kernel('rmsnorm', () => ({
    name: 'rmsNorm',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
      ['eps', 'f32'],
      ['offset', 'f32'],
      ['has_w', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['w', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
      ['rstd', 'f32', 'read_write'],
    ],
    // x rstd (offset + w), rstd = 1 / sqrt(mean(x^2) + eps)
    body: rowBody(`var s = 0.0;
  for (var j = li; j < D; j += ${WG}u) { let v = x[base + j]; s += v * v; }
  let rs = 1.0 / sqrt(wg_sum(s, li) / fd + P.eps);
  if (!valid) { return; }
  for (var j = li; j < D; j += ${WG}u) {
    var y = x[base + j] * rs;
    if (P.has_w == 1u) { y *= P.offset + w[j]; }
    out[base + j] = y;
  }
  if (li == 0u) { rstd[r] = rs; }`),
  }));
  ctx.rt.run(
    k,
    [buf(a.x), bufOr(ctx, a.w), buf(a.out), buf(a.rstd)],
    [a.N, a.D, a.eps, a.offset, a.w ? 1 : 0],
    grid(a.N, 1),
  );
}

export function rmsNormGrad(ctx: Ctx, a: KernelArgs['rmsNormGrad']): void {
  f32Only('rmsNormGrad', a.x);
  const k = ctx.rt.kernel('rmsnorm_grad', () => ({
    name: 'rmsNorm backward',
    params: [
      ['N', 'u32'],
      ['D', 'u32'],
      ['offset', 'f32'],
      ['has_w', 'u32'],
    ],
    buffers: [
      ['x', 'f32', 'read'],
      ['w', 'f32', 'read'],
      ['rstd', 'f32', 'read'],
      ['dy', 'f32', 'read'],
      ['dx', 'f32', 'read_write'],
    ],
    // g = dy (offset + w), xhat = x rstd: dx = rstd (g - xhat mean(g xhat))
    body: rowBody(`let rs = select(0.0, rstd[r], valid);
  var sgx = 0.0;
  for (var j = li; j < D; j += ${WG}u) {
    var g = dy[base + j];
    if (P.has_w == 1u) { g *= P.offset + w[j]; }
    sgx += g * x[base + j] * rs;
  }
  let mgx = wg_sum(sgx, li) / fd;
  if (!valid) { return; }
  for (var j = li; j < D; j += ${WG}u) {
    var g = dy[base + j];
    if (P.has_w == 1u) { g *= P.offset + w[j]; }
    dx[base + j] = rs * (g - x[base + j] * rs * mgx);
  }`),
  }));
  ctx.rt.run(
    k,
    [buf(a.x), bufOr(ctx, a.w), buf(a.rstd), buf(a.dy), buf(a.dx)],
    [a.N, a.D, a.offset, a.w ? 1 : 0],
    grid(a.N, 1),
  );
}

export function rmsNormWGrad(ctx: Ctx, a: KernelArgs['rmsNormWGrad']): void {
  f32Only('rmsNormWGrad', a.x);
  weightGrad(ctx, 'rms', buf(a.x), ctx.dummy, buf(a.rstd), buf(a.dy), buf(a.dw), null, a.N, a.D);
}
