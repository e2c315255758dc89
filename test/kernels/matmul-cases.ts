// What the matmul kernel tests share (matmul.test.ts for the WebAssembly kernels, native.test.ts
// for the native ones): a case's layout and data, the float64 truth with its rounding bound, and
// one run of a kernel on a runtime's memory.
import assert from 'node:assert/strict';
import { matmul as matmulRef } from '../../src/backend/ref/matmul.js';
import type { MatmulArgs } from '../../src/backend/cpu/fast/matmul.js';
import type { KernelRuntime } from '../../src/backend/cpu/runtime.js';

export interface Case {
  M: number;
  N: number;
  K: number;
  transA: 0 | 1;
  transB: 0 | 1;
  accumulate: 0 | 1;
  batch?: number;
  broadcastA?: boolean;
  broadcastB?: boolean;
  /** Extra elements at the end of each stored row (tests lda, ldb, ldc > row length). */
  pad?: number;
}

const U = 2 ** -24; // float32 unit roundoff

export interface Prepared {
  /** The kernel's arguments without the three addresses. */
  layout: Required<Omit<MatmulArgs, 'a' | 'b' | 'c'>>;
  a: Float32Array;
  b: Float32Array;
  c0: Float32Array;
  /** Float64 truth and the magnitude sum_k |a||b| (+ |C_old|) that scales the rounding bound. */
  want: Float64Array;
  mag: Float64Array;
  where: string;
}

/** Lays the case out, fills A, B and the old C from `value`, and computes the float64 truth. */
export function prepare(cs: Case, value: () => number): Prepared {
  const { M, N, K, transA, transB, accumulate } = cs;
  const batch = cs.batch ?? 1,
    pad = cs.pad ?? 0;
  const rowsA = transA ? K : M,
    colsA = transA ? M : K,
    rowsB = transB ? N : K,
    colsB = transB ? K : N;
  const lda = colsA + pad,
    ldb = colsB + pad,
    ldc = N + pad;
  const sizeA = rowsA * lda,
    sizeB = rowsB * ldb,
    sizeC = M * ldc;
  const strideA = cs.broadcastA ? 0 : sizeA,
    strideB = cs.broadcastB ? 0 : sizeB,
    strideC = sizeC;
  const nA = cs.broadcastA ? sizeA : sizeA * batch,
    nB = cs.broadcastB ? sizeB : sizeB * batch,
    nC = sizeC * batch;
  const a = Float32Array.from({ length: nA }, value),
    b = Float32Array.from({ length: nB }, value);
  const c0 = Float32Array.from({ length: nC }, value);
  const want = Float64Array.from(c0),
    mag = Float64Array.from(c0, (v) => (accumulate ? Math.abs(v) : 0));
  matmulRef(
    Float64Array.from(a),
    Float64Array.from(b),
    want,
    M,
    N,
    K,
    lda,
    ldb,
    ldc,
    transA,
    transB,
    accumulate,
    batch,
    strideA,
    strideB,
    strideC,
  );
  matmulRef(
    Float64Array.from(a, Math.abs),
    Float64Array.from(b, Math.abs),
    mag,
    M,
    N,
    K,
    lda,
    ldb,
    ldc,
    transA,
    transB,
    1,
    batch,
    strideA,
    strideB,
    strideC,
  );
  const where =
    `M=${M} N=${N} K=${K} transA=${transA} transB=${transB} acc=${accumulate} batch=${batch} ` +
    `pad=${pad} bcastA=${!!cs.broadcastA} bcastB=${!!cs.broadcastB}`;
  const layout = { M, N, K, transA, transB, accumulate, batch, strideA, strideB, strideC, lda, ldb, ldc };
  return { layout, a, b, c0, want, mag, where };
}

/** Copies A, B and C into the runtime's memory, runs `kernel` there and returns a copy of C. */
export function run(
  rt: KernelRuntime,
  p: Prepared,
  kernel: (rt: KernelRuntime, args: MatmulArgs) => void,
): Float32Array {
  const pa = rt.malloc(p.a.length * 4),
    pb = rt.malloc(p.b.length * 4),
    pc = rt.malloc(p.c0.length * 4);
  const heap = rt.heap().f32;
  heap.set(p.a, pa >> 2);
  heap.set(p.b, pb >> 2);
  heap.set(p.c0, pc >> 2);
  kernel(rt, { a: pa, b: pb, c: pc, ...p.layout });
  const got = rt.heap().f32.slice(pc >> 2, (pc >> 2) + p.c0.length);
  rt.free(pa);
  rt.free(pb);
  rt.free(pc);
  return got;
}

/**
 * Any summation order has |error| <= (K + 2) u sum_k |a_ik b_kj| (+ |C_old| when accumulating), so
 * the bound allows every correct kernel, while a lost or doubled term (about mag / K) exceeds it.
 * Padding columns of C must keep their old values.
 */
export function assertClose(got: Float32Array, p: Prepared, where: string): void {
  const { N, K, ldc } = p.layout;
  for (let i = 0; i < got.length; i++) {
    const inRow = i % ldc < N;
    const expected = inRow ? p.want[i] : p.c0[i],
      tol = inRow ? (K + 2) * U * p.mag[i] + 1e-30 : 0;
    if (!(Math.abs(got[i] - expected) <= tol))
      assert.fail(`${where}: C[${i}] = ${got[i]}, want ${expected} (tolerance ${tol})`);
  }
}
