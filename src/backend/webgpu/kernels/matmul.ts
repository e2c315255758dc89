// Batched matrix multiply C[i] (+)= op(A[i]) op(B[i]): a register-blocked tiled kernel, generated
// for a few tile shapes (MATMUL_TILES). E.g. 64 x 64: a workgroup of 16 x 16 threads computes a
// 64 x 64 tile of C, stepping K by 16 through shared memory; each thread owns a 4 x 4 block (16
// accumulators), reads one vec4 of A and one of B from shared memory per k and does 16 FMAs;
// 128 x 128: 8 x 8 per thread, 2 + 2 vec4 reads for 64 FMAs. The next K step's global loads are
// issued before the current step's arithmetic. Operands are read as vec4 where rows are 16-byte
// aligned. When the output has few tiles but K is long (weight gradients: [768, 768] over
// K = 8192 tokens), K is split into chunks computed as a batch and then summed (split-K). Each
// output sums its K products in order, whatever the tile, so every tile gives the same bits
// (split-K aside).
import type { KernelArgs } from '../../../core/kernels.js';
import { reduceBuffers } from './reduce.js';
import { buf, f32Only, release, scratch, type Ctx } from './context.js';

/**
 * A tile configuration: each workgroup computes bm x bn of C, stepping K by bk through shared
 * memory; each of its (bn / tn) x (bm / tm) threads owns tm x tn outputs, as tm / 4 groups of 4 rows
 * and tn / 4 groups of 4 columns spread bm / tm (bn / tn) vec4s apart, so that neighbouring threads
 * read neighbouring vec4s of the shared tiles (no bank conflicts).
 */
export interface Tile {
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
  /**
   * Workgroups that keep a large GPU busy (an H200's 132 SMs hold ~4 of the small tile's and ~2
   * of the 128 x 128 tile's, whose threads need ~4x the registers); split-K below this.
   */
  fill: number;
}

/**
 * The configurations the kernel is compiled for. 64x64x16 (4 x 4 per thread) measured 21-27 TFLOP/s
 * at 4096^3 on an H200; 128x128x8 (8 x 8 per thread, 64 accumulators) is the classic fp32 GEMM
 * shape for large outputs on NVIDIA GPUs. `TSDPO_WEBGPU_MATMUL_TILE=<name>` forces one for every
 * matmul (benchmarks); otherwise `tileFor` picks by output size.
 */
export const MATMUL_TILES: Readonly<Record<string, Tile>> = {
  '64x64x16': { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4, fill: 512 },
  '128x64x16': { bm: 128, bn: 64, bk: 16, tm: 8, tn: 4, fill: 384 },
  '128x128x8': { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8, fill: 256 },
  '128x128x16': { bm: 128, bn: 128, bk: 16, tm: 8, tn: 8, fill: 256 },
};
// Measured on an H200 (docs/webgpu.md, bench/gpu-dpo.ts --matmul): 128x64x16 was the fastest at
// 4096^3 and at a gpt2 step's shapes (31-35 TFLOP/s against 23-28 for 128x128x8), except where K is
// very long (the LM head's input gradient, K = vocabulary: 128x128x8 23.7 against 17.2).
const SMALL = MATMUL_TILES['64x64x16'],
  LARGE = MATMUL_TILES['128x64x16'],
  LONG_K = MATMUL_TILES['128x128x8'];
const LONG_K_FROM = 16384;
let forced: Tile | null = null;

/** Forces one tile configuration for every matmul (null: choose by size again). */
export function forceMatmulTile(name: string | null): void {
  if (name === null || name === '') {
    forced = null;
    return;
  }
  const t = MATMUL_TILES[name];
  if (!t) throw new Error(`webgpu matmul: unknown tile '${name}' (tiles: ${Object.keys(MATMUL_TILES).join(', ')})`);
  forced = t;
}
if (typeof process !== 'undefined' && process.env?.TSDPO_WEBGPU_MATMUL_TILE)
  forceMatmulTile(process.env.TSDPO_WEBGPU_MATMUL_TILE);

/** Threads per workgroup of a tile. */
function threads(t: Tile): number {
  return (t.bn / t.tn) * (t.bm / t.tm);
}

interface Operand {
  /** Binding name, shared tile, and the outer dimension (M for A, N for B). */
  name: 'a' | 'b';
  tile: 'As' | 'Bs';
  outer: 'M' | 'N';
  /** The tile's extent along the outer dimension (bm or bn). */
  size: number;
  /** Stored [K, outer] (contiguous along the outer dim), else [outer, K] (contiguous along K). */
  kMajor: boolean;
  /** Rows 16-byte aligned: load vec4s. */
  vec: boolean;
}

/** vec4s per k-row of a shared tile: the tile's outer extent / 4, + 1 against bank conflicts. */
function pad(op: Operand): number {
  return op.size / 4 + 1;
}

/**
 * Per K step a workgroup loads op.size x bk values of an operand as vec4s along its contiguous
 * dimension, `loads` per thread; load u (= t + i * threads) is
 *  - stored [K, outer]: outer 4 (u % (size / 4)) .. + 3 at k = u / (size / 4); one vec4 of the tile;
 *  - stored [outer, K]: k 4 (u % (bk / 4)) .. + 3 at outer u / (bk / 4); scattered into 4 k-rows.
 * Tiles hold [k][outer / 4] as vec4s, pad(op) vec4s per k.
 */
function loader(op: Operand, tile: Tile): string {
  const { name, outer, kMajor, vec } = op;
  const ld = `P.ld${name}`,
    across = kMajor ? op.size / 4 : tile.bk / 4,
    P4 = pad(op);
  const fetch = (idx: string, ok: (j: string) => string): string =>
    vec
      ? `if (${ok('0u')}) { v = ${name}[(${idx}) / 4u]; }`
      : `for (var j = 0u; j < 4u; j++) { if (${ok('j')}) { v[j] = ${name}[${idx} + j]; } }`;
  const body = kMajor
    ? `let o = o0 + 4u * (u % ${across}u);
  let k = k0 + u / ${across}u;
  ${fetch(`base + k * ${ld} + o`, (j) => `k < klim && o + ${j} < P.${outer}`)}`
    : `let o = o0 + u / ${across}u;
  let k = k0 + 4u * (u % ${across}u);
  ${fetch(`base + o * ${ld} + k`, (j) => `o < P.${outer} && k + ${j} < klim`)}`;
  return `
fn load_${name}(base: u32, o0: u32, k0: u32, klim: u32, u: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  ${body}
  return v;
}
fn store_${name}(v: vec4<f32>, u: u32) {
  ${
    kMajor
      ? `${op.tile}[(u / ${across}u) * ${P4}u + u % ${across}u] = v;`
      : `let o = u / ${across}u;
  for (var j = 0u; j < 4u; j++) { ${op.tile}[(4u * (u % ${across}u) + j) * ${P4}u + o / 4u][o % 4u] = v[j]; }`
  }
}`;
}

/** Loads per thread of one operand per K step. */
function loadsOf(op: Operand, tile: Tile): number {
  return (op.size * tile.bk) / 4 / threads(tile);
}

function source(A: Operand, B: Operand, tile: Tile): string {
  const { bk, tm, tn } = tile;
  const WX = tile.bn / tn,
    WY = tile.bm / tm,
    T = threads(tile);
  const RM = tm / 4,
    RN = tn / 4,
    LA = loadsOf(A, tile),
    LB = loadsOf(B, tile);
  const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  // Accumulator acc_<row>_<c>: output row 4 (ly + r WY) + i (row = 4 r + i), columns of vec4 c.
  const accs = range(tm).flatMap((row) => range(RN).map((c) => `acc_${row}_${c}`));
  const loadAll = (k0: string): string =>
    [
      ...range(LA).map((i) => `av${i} = load_a(aBase, m0, ${k0}, klim, t + ${i * T}u);`),
      ...range(LB).map((i) => `bv${i} = load_b(bBase, n0, ${k0}, klim, t + ${i * T}u);`),
    ].join('\n      ');
  const fmas = range(RM).flatMap((r) =>
    range(4).flatMap((i) =>
      range(RN).map((c) => `acc_${4 * r + i}_${c} = fma(vec4<f32>(x${r}.${'xyzw'[i]}), y${c}, acc_${4 * r + i}_${c});`),
    ),
  );
  const writes = range(RM).flatMap((r) =>
    range(4).map(
      (i) => `
  row = m0 + 4u * (lid.y + ${r * WY}u) + ${i}u;
  if (row < P.M) {${range(RN)
    .map(
      (c) => `
    write(cBase + row * P.N, n0 + 4u * (lid.x + ${c * WX}u), acc_${4 * r + i}_${c});`,
    )
    .join('')}
  }`,
    ),
  );
  return /* wgsl */ `
var<workgroup> As: array<vec4<f32>, ${bk * pad(A)}>;
var<workgroup> Bs: array<vec4<f32>, ${bk * pad(B)}>;
${loader(A, tile)}
${loader(B, tile)}

/** Writes (or adds) up to 4 columns col.. of one row of C, stopping at N. */
fn write(rowBase: u32, col: u32, v: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) {
    if (col + j < P.N) {
      let at = rowBase + col + j;
      var x = v[j];
      if (P.accumulate == 1u) { x += c[at]; }
      c[at] = x;
    }
  }
}

@compute @workgroup_size(${WX}, ${WY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let m0 = wid.y * ${tile.bm}u;
  let n0 = wid.x * ${tile.bn}u;
  let aBase = wid.z * P.strideA;
  let bBase = wid.z * P.strideB;
  let cBase = wid.z * P.strideC;
  // Split-K: batch z is the chunk [z K, z K + K) of K total.
  let klim = select(P.K, min(P.K, P.ktotal - min(P.ktotal, wid.z * P.K)), P.split == 1u);
  ${accs.map((a) => `var ${a} = vec4<f32>(0.0);`).join('\n  ')}
  ${range(LA)
    .map((i) => `var av${i}: vec4<f32>;`)
    .join(' ')} ${range(LB)
    .map((i) => `var bv${i}: vec4<f32>;`)
    .join(' ')}
  ${loadAll('0u')}
  for (var k0 = 0u; k0 < klim; k0 += ${bk}u) {
    workgroupBarrier();
    ${range(LA)
      .map((i) => `store_a(av${i}, t + ${i * T}u);`)
      .join(' ')}
    ${range(LB)
      .map((i) => `store_b(bv${i}, t + ${i * T}u);`)
      .join(' ')}
    workgroupBarrier();
    if (k0 + ${bk}u < klim) {
      ${loadAll(`k0 + ${bk}u`)}
    }
    for (var k = 0u; k < ${bk}u; k++) {
      ${range(RM)
        .map((r) => `let x${r} = As[k * ${pad(A)}u + lid.y + ${r * WY}u];`)
        .join('\n      ')}
      ${range(RN)
        .map((c) => `let y${c} = Bs[k * ${pad(B)}u + lid.x + ${c * WX}u];`)
        .join('\n      ')}
      ${fmas.join('\n      ')}
    }
  }
  var row: u32;${writes.join('')}
}`;
}

const PARAMS = [
  ['M', 'u32'],
  ['N', 'u32'],
  ['K', 'u32'],
  ['ktotal', 'u32'],
  ['split', 'u32'],
  ['lda', 'u32'],
  ['ldb', 'u32'],
  ['strideA', 'u32'],
  ['strideB', 'u32'],
  ['strideC', 'u32'],
  ['accumulate', 'u32'],
] as const;

/** Bytes of shared memory a tile's kernel declares. */
function sharedBytes(t: Tile): number {
  return 16 * t.bk * (t.bm / 4 + 1 + t.bn / 4 + 1);
}

/**
 * The tile for an output of batch x M x N with K-long sums: 128 x 64 (128 x 128 for K of at least
 * LONG_K_FROM) where there are at least half a fill of such tiles (split-K makes up the rest where
 * K is long), else 64 x 64.
 */
export function tileFor(M: number, N: number, K: number, batch: number, limit: number): Tile {
  if (forced) {
    if (sharedBytes(forced) > limit) {
      throw new Error(
        `webgpu matmul: tile ${forced.bm}x${forced.bn}x${forced.bk} needs ${sharedBytes(forced)} bytes of workgroup memory, above this device's ${limit}`,
      );
    }
    return forced;
  }
  const big = K >= LONG_K_FROM ? LONG_K : LARGE;
  const tiles = Math.ceil(M / big.bm) * Math.ceil(N / big.bn) * batch;
  return tiles >= big.fill / 2 && sharedBytes(big) <= limit ? big : SMALL;
}

/**
 * Chunks of K for split-K, where the output has fewer tiles than fill the GPU and K is long:
 * enough chunks for twice the fill (so that a partly filled last wave costs little), each of at
 * least 512 values of K.
 */
function splitsFor(tile: Tile, M: number, N: number, K: number, batch: number, accumulate: boolean): number {
  const tiles = Math.ceil(M / tile.bm) * Math.ceil(N / tile.bn) * batch;
  if (batch !== 1 || accumulate || tiles >= tile.fill || K < 1024) return 1;
  return Math.max(1, Math.min(16, Math.ceil((2 * tile.fill) / tiles), Math.floor(K / 512)));
}

export function matmul(ctx: Ctx, a: KernelArgs['matmul']): void {
  f32Only('matmul', a.a, a.b, a.c);
  const { M, N, K, batch, transA, transB } = a;
  if (M === 0 || N === 0 || batch === 0) return;
  const lda = transA ? M : K,
    ldb = transB ? K : N;
  const tile = tileFor(M, N, K, batch, ctx.rt.limits.maxComputeWorkgroupStorageSize);
  const splits = splitsFor(tile, M, N, K, batch, a.accumulate);
  const chunk = splits > 1 ? Math.ceil(K / splits / tile.bk) * tile.bk : K;
  const nz = splits > 1 ? Math.ceil(K / chunk) : batch;
  // Batch (or chunk) offsets of each operand.
  const strideA = splits > 1 ? chunk * (transA ? lda : 1) : a.strideA;
  const strideB = splits > 1 ? chunk * (transB ? 1 : ldb) : a.strideB;
  const aligned = (ld: number, stride: number): boolean => ld % 4 === 0 && stride % 4 === 0;
  const A: Operand = { name: 'a', tile: 'As', outer: 'M', size: tile.bm, kMajor: transA, vec: aligned(lda, strideA) };
  const B: Operand = { name: 'b', tile: 'Bs', outer: 'N', size: tile.bn, kMajor: !transB, vec: aligned(ldb, strideB) };
  const shape = `${tile.bm}x${tile.bn}x${tile.bk}`;
  const key = `matmul_${shape}_${+transA}${+transB}${+A.vec}${+B.vec}`;
  const k = ctx.rt.kernel(key, () => ({
    name: `matmul ${shape}${transA ? ' transA' : ''}${transB ? ' transB' : ''}${A.vec ? ' vec4 A' : ''}${B.vec ? ' vec4 B' : ''}`,
    params: PARAMS,
    buffers: [
      ['a', A.vec ? 'vec4<f32>' : 'f32', 'read'],
      ['b', B.vec ? 'vec4<f32>' : 'f32', 'read'],
      ['c', 'f32', 'read_write'],
    ],
    body: source(A, B, tile),
  }));
  // The batch is grid z, at most maxComputeWorkgroupsPerDimension (65535).
  const maxZ = ctx.rt.limits.maxComputeWorkgroupsPerDimension;
  if (nz > maxZ) throw new Error(`webgpu matmul: batch ${batch} exceeds ${maxZ} (split the batch)`);
  const grid: [number, number, number] = [Math.ceil(N / tile.bn), Math.ceil(M / tile.bm), nz];
  if (splits === 1) {
    ctx.rt.run(
      k,
      [buf(a.a), buf(a.b), buf(a.c)],
      [M, N, K, K, 0, lda, ldb, strideA, strideB, a.strideC, a.accumulate ? 1 : 0],
      grid,
    );
    return;
  }
  const part = scratch(ctx, nz * M * N);
  ctx.rt.run(k, [buf(a.a), buf(a.b), part], [M, N, chunk, K, 1, lda, ldb, strideA, strideB, M * N, 0], grid);
  reduceBuffers(ctx, 'sum', part, buf(a.c), 1, nz, M * N);
  release(ctx, part);
}
