// Batched matrix multiply C[i] (+)= op(A[i]) op(B[i]): a register-blocked tiled kernel. Each
// workgroup of 16 x 16 threads computes a 64 x 64 tile of C, stepping K by 16 through shared
// memory; each thread owns a 4 x 4 block (16 accumulators), reads one vec4 of A and one of B from
// shared memory per k and does 16 FMAs. The next K step's global loads are issued before the
// current step's arithmetic. Operands are read as vec4 where rows are 16-byte aligned. When the
// output has few tiles but K is long (weight gradients: [768, 768] over K = 8192 tokens), K is
// split into chunks computed as a batch and then summed (split-K).
import type { KernelArgs } from '../../../core/kernels.js';
import { reduceBuffers } from './reduce.js';
import { buf, f32Only, release, scratch, type Ctx } from './context.js';

const BM = 64, BN = 64, BK = 16;
const PAD = 17; // vec4s per k-row of a shared tile (16 + 1 against bank conflicts)

interface Operand {
  /** Binding name, shared tile, and the outer dimension (M for A, N for B). */
  name: 'a' | 'b';
  tile: 'As' | 'Bs';
  outer: 'M' | 'N';
  /** Stored [K, outer] (contiguous along the outer dim), else [outer, K] (contiguous along K). */
  kMajor: boolean;
  /** Rows 16-byte aligned: load vec4s. */
  vec: boolean;
}

/**
 * Thread t loads 4 consecutive values along the operand's contiguous dimension:
 *  - stored [K, outer]: outer 4 (t % 16) .. + 3 at k = t / 16; stored as one vec4 of the tile;
 *  - stored [outer, K]: k 4 (t % 4) .. + 3 at outer t / 4; scattered into 4 rows of the tile.
 * Tiles hold [k][outer / 4] as vec4s, PAD vec4s per k.
 */
function loader(op: Operand): string {
  const { name, outer, kMajor, vec } = op;
  const ld = `P.ld${name}`;
  const fetch = (idx: string, ok: (j: string) => string): string => (vec
    ? `if (${ok('0u')}) { v = ${name}[(${idx}) / 4u]; }`
    : `for (var j = 0u; j < 4u; j++) { if (${ok('j')}) { v[j] = ${name}[${idx} + j]; } }`);
  const body = kMajor
    ? `let o = o0 + 4u * (t % 16u);
  let k = k0 + t / 16u;
  ${fetch(`base + k * ${ld} + o`, (j) => `k < klim && o + ${j} < P.${outer}`)}`
    : `let o = o0 + t / 4u;
  let k = k0 + 4u * (t % 4u);
  ${fetch(`base + o * ${ld} + k`, (j) => `o < P.${outer} && k + ${j} < klim`)}`;
  return `
fn load_${name}(base: u32, o0: u32, k0: u32, klim: u32, t: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  ${body}
  return v;
}
fn store_${name}(v: vec4<f32>, t: u32) {
  ${kMajor
    ? `${op.tile}[(t / 16u) * ${PAD}u + t % 16u] = v;`
    : `let o = t / 4u;
  for (var j = 0u; j < 4u; j++) { ${op.tile}[(4u * (t % 4u) + j) * ${PAD}u + o / 4u][o % 4u] = v[j]; }`}
}`;
}

function source(A: Operand, B: Operand): string {
  return /* wgsl */ `
var<workgroup> As: array<vec4<f32>, ${BK * PAD}>;
var<workgroup> Bs: array<vec4<f32>, ${BK * PAD}>;
${loader(A)}
${loader(B)}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let m0 = wid.y * ${BM}u;
  let n0 = wid.x * ${BN}u;
  let aBase = wid.z * P.strideA;
  let bBase = wid.z * P.strideB;
  let cBase = wid.z * P.strideC;
  // Split-K: batch z is the chunk [z K, z K + K) of K total.
  let klim = select(P.K, min(P.K, P.ktotal - min(P.ktotal, wid.z * P.K)), P.split == 1u);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var av = load_a(aBase, m0, 0u, klim, t);
  var bv = load_b(bBase, n0, 0u, klim, t);
  for (var k0 = 0u; k0 < klim; k0 += ${BK}u) {
    workgroupBarrier();
    store_a(av, t);
    store_b(bv, t);
    workgroupBarrier();
    if (k0 + ${BK}u < klim) {
      av = load_a(aBase, m0, k0 + ${BK}u, klim, t);
      bv = load_b(bBase, n0, k0 + ${BK}u, klim, t);
    }
    for (var k = 0u; k < ${BK}u; k++) {
      let x = As[k * ${PAD}u + lid.y];
      let y = Bs[k * ${PAD}u + lid.x];
      acc0 = fma(vec4<f32>(x.x), y, acc0);
      acc1 = fma(vec4<f32>(x.y), y, acc1);
      acc2 = fma(vec4<f32>(x.z), y, acc2);
      acc3 = fma(vec4<f32>(x.w), y, acc3);
    }
  }
  var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  let col = n0 + 4u * lid.x;
  for (var i = 0u; i < 4u; i++) {
    let row = m0 + 4u * lid.y + i;
    if (row >= P.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (col + j < P.N) {
        let at = cBase + row * P.N + col + j;
        var v = acc[i][j];
        if (P.accumulate == 1u) { v += c[at]; }
        c[at] = v;
      }
    }
  }
}`;
}

const PARAMS = [
  ['M', 'u32'], ['N', 'u32'], ['K', 'u32'], ['ktotal', 'u32'], ['split', 'u32'], ['lda', 'u32'], ['ldb', 'u32'],
  ['strideA', 'u32'], ['strideB', 'u32'], ['strideC', 'u32'], ['accumulate', 'u32'],
] as const;

/** Chunks of K for split-K: enough workgroups to fill a large GPU, chunks of at least 512. */
function splitsFor(M: number, N: number, K: number, batch: number, accumulate: boolean): number {
  const tiles = Math.ceil(M / BM) * Math.ceil(N / BN) * batch;
  if (batch !== 1 || accumulate || tiles >= 512 || K < 1024) return 1;
  return Math.max(1, Math.min(16, Math.ceil(1024 / tiles), Math.floor(K / 512)));
}

export function matmul(ctx: Ctx, a: KernelArgs['matmul']): void {
  f32Only('matmul', a.a, a.b, a.c);
  const { M, N, K, batch, transA, transB } = a;
  if (M === 0 || N === 0 || batch === 0) return;
  const lda = transA ? M : K, ldb = transB ? K : N;
  const splits = splitsFor(M, N, K, batch, a.accumulate);
  const chunk = splits > 1 ? Math.ceil(K / splits / BK) * BK : K;
  const nz = splits > 1 ? Math.ceil(K / chunk) : batch;
  // Batch (or chunk) offsets of each operand.
  const strideA = splits > 1 ? chunk * (transA ? lda : 1) : a.strideA;
  const strideB = splits > 1 ? chunk * (transB ? 1 : ldb) : a.strideB;
  const aligned = (ld: number, stride: number): boolean => ld % 4 === 0 && stride % 4 === 0;
  const A: Operand = { name: 'a', tile: 'As', outer: 'M', kMajor: transA, vec: aligned(lda, strideA) };
  const B: Operand = { name: 'b', tile: 'Bs', outer: 'N', kMajor: !transB, vec: aligned(ldb, strideB) };
  const key = `matmul_${+transA}${+transB}${+A.vec}${+B.vec}`;
  const k = ctx.rt.kernel(key, () => ({
    name: `matmul${transA ? ' transA' : ''}${transB ? ' transB' : ''}${A.vec ? ' vec4 A' : ''}${B.vec ? ' vec4 B' : ''}`,
    params: PARAMS,
    buffers: [['a', A.vec ? 'vec4<f32>' : 'f32', 'read'], ['b', B.vec ? 'vec4<f32>' : 'f32', 'read'], ['c', 'f32', 'read_write']],
    body: source(A, B),
  }));
  // The batch is grid z, at most maxComputeWorkgroupsPerDimension (65535).
  const maxZ = ctx.rt.limits.maxComputeWorkgroupsPerDimension;
  if (nz > maxZ) throw new Error(`webgpu matmul: batch ${batch} exceeds ${maxZ} (split the batch)`);
  const grid: [number, number, number] = [Math.ceil(N / BN), Math.ceil(M / BM), nz];
  if (splits === 1) {
    ctx.rt.run(k, [buf(a.a), buf(a.b), buf(a.c)],
      [M, N, K, K, 0, lda, ldb, strideA, strideB, a.strideC, a.accumulate ? 1 : 0], grid);
    return;
  }
  const part = scratch(ctx, nz * M * N);
  ctx.rt.run(k, [buf(a.a), buf(a.b), part], [M, N, chunk, K, 1, lda, ldb, strideA, strideB, M * N, 0], grid);
  reduceBuffers(ctx, 'sum', part, buf(a.c), 1, nz, M * N);
  release(ctx, part);
}
