// Batched matrix multiply C[i] (+)= op(A[i]) op(B[i]): a register-blocked tiled kernel. Each
// workgroup of 16 x 16 threads computes a 64 x 64 tile of C, stepping K by 16 through shared
// memory; each thread owns a 4 x 4 block (16 accumulators), reads a vec4 of A and a vec4 of B
// from shared memory per k and does 16 FMAs. The next K step's global loads are issued before the
// current step's arithmetic. One variant per (transA, transB); the batch index is workgroup z.
import type { KernelArgs } from '../../../core/kernels.js';
import { buf, f32Only, type Ctx } from './context.js';

const BM = 64, BN = 64, BK = 16;

/**
 * Thread t (0..255) loads one vec4 of the A tile and one of the B tile per K step, arranged so
 * that neighbouring threads read neighbouring addresses of row-major storage:
 *  - A [M, K] (no transA): k = t % 16, rows 4 (t / 16) .. + 3  (four loads along M, strided)
 *  - A [K, M] (transA):    k = t / 16, rows 4 (t % 16) .. + 3  (contiguous)
 *  - B [K, N] (no transB): k = t / 16, cols 4 (t % 16) .. + 3  (contiguous)
 *  - B [N, K] (transB):    k = t % 16, cols 4 (t / 16) .. + 3  (strided)
 * As holds the tile as [k][m / 4] (rows padded to 17 vec4 against bank conflicts), Bs as [k][n / 4].
 */
function source(transA: boolean, transB: boolean): string {
  const aK = transA ? 't / 16u' : 't % 16u', aG = transA ? 't % 16u' : 't / 16u';
  const bK = transB ? 't % 16u' : 't / 16u', bG = transB ? 't / 16u' : 't % 16u';
  const aAt = (m: string, k: string): string => (transA ? `${k} * P.M + ${m}` : `${m} * P.K + ${k}`);
  const bAt = (n: string, k: string): string => (transB ? `${n} * P.K + ${k}` : `${k} * P.N + ${n}`);
  return /* wgsl */ `
var<workgroup> As: array<vec4<f32>, ${BK * 17}>;
var<workgroup> Bs: array<vec4<f32>, ${BK * 16}>;

fn load_a(base: u32, m0: u32, k: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (k < P.K) {
    for (var j = 0u; j < 4u; j++) {
      let m = m0 + j;
      if (m < P.M) { v[j] = a[base + ${aAt('m', 'k')}]; }
    }
  }
  return v;
}

fn load_b(base: u32, n0: u32, k: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (k < P.K) {
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + j;
      if (n < P.N) { v[j] = b[base + ${bAt('n', 'k')}]; }
    }
  }
  return v;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let m0 = wid.y * ${BM}u;
  let n0 = wid.x * ${BN}u;
  let aBase = wid.z * P.strideA;
  let bBase = wid.z * P.strideB;
  let cBase = wid.z * P.strideC;
  let ak = ${aK};
  let am = m0 + 4u * (${aG});
  let bk = ${bK};
  let bn = n0 + 4u * (${bG});
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var av = load_a(aBase, am, ak);
  var bv = load_b(bBase, bn, bk);
  for (var k0 = 0u; k0 < P.K; k0 += ${BK}u) {
    workgroupBarrier();
    As[ak * 17u + ${aG}] = av;
    Bs[bk * 16u + ${bG}] = bv;
    workgroupBarrier();
    if (k0 + ${BK}u < P.K) {
      av = load_a(aBase, am, k0 + ${BK}u + ak);
      bv = load_b(bBase, bn, k0 + ${BK}u + bk);
    }
    for (var k = 0u; k < ${BK}u; k++) {
      let x = As[k * 17u + lid.y];
      let y = Bs[k * 16u + lid.x];
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

export function matmul(ctx: Ctx, a: KernelArgs['matmul']): void {
  f32Only('matmul', a.a, a.b, a.c);
  const { M, N, K, batch } = a;
  if (M === 0 || N === 0 || batch === 0) return;
  const k = ctx.rt.kernel(`matmul_${a.transA}_${a.transB}`, () => ({
    name: `matmul${a.transA ? ' transA' : ''}${a.transB ? ' transB' : ''}`,
    params: [['M', 'u32'], ['N', 'u32'], ['K', 'u32'], ['strideA', 'u32'], ['strideB', 'u32'], ['strideC', 'u32'], ['accumulate', 'u32']],
    buffers: [['a', 'f32', 'read'], ['b', 'f32', 'read'], ['c', 'f32', 'read_write']],
    body: source(a.transA, a.transB),
  }));
  const params = [M, N, K, a.strideA, a.strideB, a.strideC, a.accumulate ? 1 : 0];
  // The batch is grid z, at most maxComputeWorkgroupsPerDimension (65535).
  const maxZ = ctx.rt.limits.maxComputeWorkgroupsPerDimension;
  if (batch > maxZ) throw new Error(`webgpu matmul: batch ${batch} exceeds ${maxZ} (split the batch)`);
  ctx.rt.run(k, [buf(a.a), buf(a.b), buf(a.c)], params, [Math.ceil(N / BN), Math.ceil(M / BM), batch]);
}
