// bfloat16 frozen weights on the CPU (kernels/bf16.ts): a matmul whose B operand is bf16 widens B
// a slab at a time into f32 scratch and runs the f32 matmul (WebAssembly or native) on each slab,
// so the weight stays 16-bit at rest and the products accumulate in f32 exactly as the f32 path
// does on the widened values. Slabs are whole rows of the stored B: for B stored [N, K] (x W^T)
// a slab is a range of output columns (written with row stride ldc = N); for B stored [K, N]
// (dy W) a range of K, accumulated into C.
import type { MatmulArgs } from './matmul.js';
import type { KernelRuntime } from '../runtime.js';
import { runElements, runRows } from './split.js';

/** f32 elements of one widened slab (16 MiB): large enough that each slab is a big product. */
let slabElements = 4 << 20;

/** Sets the slab size in f32 elements (tests force many slabs); returns the previous value. */
export function setBf16SlabElements(n: number): number {
  const old = slabElements;
  slabElements = Math.max(1, Math.floor(n));
  return old;
}

/** dst[i] = f32(src[i]) for i < n (src: bf16 bits, dst: f32; byte addresses). */
export function bf16ToF32(rt: KernelRuntime, src: number, dst: number, n: number): void {
  runElements(rt, 'bf16_to_f32', [src, dst, n], n);
}

/** out[r] = f32(weight[ids[r]]): weight [V, D] bf16, ids [N] i32, out [N, D] f32. */
export function embeddingBf16(
  rt: KernelRuntime,
  weight: number,
  ids: number,
  out: number,
  N: number,
  D: number,
  V: number,
): void {
  runRows(rt, 'embedding_bf16', [weight, ids, out, N, D, V], N, D);
}

/**
 * C (+)= op(A) op(B) with A, C f32 and B bf16 (byte addresses, dense as in MatmulArgs without
 * lda / ldb / ldc); `f32` is the f32 matmul to run on each widened slab.
 */
export function matmulBf16B(rt: KernelRuntime, f32: (rt: KernelRuntime, p: MatmulArgs) => void, p: MatmulArgs): void {
  const { M, N, K, transA, transB } = p;
  const batch = p.batch ?? 1,
    strideA = p.strideA ?? M * K,
    strideB = p.strideB ?? K * N,
    strideC = p.strideC ?? M * N;
  if (M === 0 || N === 0 || batch === 0) return;
  if (K === 0) {
    f32(rt, { ...p, b: p.a });
    return;
  }
  // Each batch element with its own B is a product of its own; a broadcast B (stride 0) is widened once.
  if (strideB !== 0 && batch > 1) {
    for (let i = 0; i < batch; i++) {
      matmulBf16B(rt, f32, {
        ...p,
        a: p.a + 4 * i * strideA,
        b: p.b + 2 * i * strideB,
        c: p.c + 4 * i * strideC,
        batch: 1,
      });
    }
    return;
  }
  const rowLen = transB ? K : N; // elements of one stored row of B
  const rows = transB ? N : K; // stored rows of B
  let per = Math.max(1, Math.floor(slabElements / rowLen));
  if (per >= 64) per -= per % 64;
  per = Math.min(per, rows);
  const slab = rt.malloc(4 * per * rowLen);
  try {
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      bf16ToF32(rt, p.b + 2 * r0 * rowLen, slab, n * rowLen);
      if (transB) {
        // Columns r0 .. r0 + n of C.
        f32(rt, {
          a: p.a,
          b: slab,
          c: p.c + 4 * r0,
          M,
          N: n,
          K,
          transA,
          transB,
          accumulate: p.accumulate ?? 0,
          lda: transA ? M : K,
          ldb: K,
          ldc: N,
          batch,
          strideA,
          strideB: 0,
          strideC,
        });
      } else {
        // K range r0 .. r0 + n: columns of op(A) (A stored [M, K]) or its rows (stored [K, M]).
        f32(rt, {
          a: p.a + 4 * (transA ? r0 * M : r0),
          b: slab,
          c: p.c,
          M,
          N,
          K: n,
          transA,
          transB,
          accumulate: r0 > 0 ? 1 : (p.accumulate ?? 0),
          lda: transA ? M : K,
          ldb: N,
          ldc: N,
          batch,
          strideA,
          strideB: 0,
          strideC,
        });
      }
    }
  } finally {
    rt.free(slab);
  }
}
