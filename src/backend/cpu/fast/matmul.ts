// TypeScript side of the f32 matrix multiply kernel (assembly/matmul.ts): checks the arguments,
// picks the work split and runs it on the CPU runtime's threads.
import type { KernelRuntime } from '../runtime.js';

export interface MatmulArgs {
  /**
   * Byte addresses in the runtime's memory: op(A) is M x K, op(B) is K x N, C is M x N. C must
   * not overlap A or B.
   */
  a: number;
  b: number;
  c: number;
  M: number;
  N: number;
  K: number;
  /** 1: A is stored [K, M] and used transposed (likewise B stored [N, K]). */
  transA: 0 | 1;
  transB: 0 | 1;
  /** 1: C += op(A) op(B); 0 (default): C = op(A) op(B). */
  accumulate?: 0 | 1;
  /** Batch elements (default 1), element strides between them (0 broadcasts; default dense). */
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
  /** Row strides of the stored matrices (default dense: K or M for A, N or K for B, N for C). */
  lda?: number;
  ldb?: number;
  ldc?: number;
}

/**
 * Products below this many multiply-adds (about 6 us on one thread) run on the calling thread:
 * handing work to the other threads costs 1-2 us while they spin, ~7 us once they sleep.
 */
const MIN_PARALLEL_MADDS = 1 << 17;

/** One past the last byte of a batch of `rows` x `cols` matrices of `bytes`-byte elements stored from `ptr`. */
function end(ptr: number, rows: number, cols: number, ld: number, batch: number, stride: number, bytes = 4): number {
  return ptr + bytes * ((batch - 1) * stride + (rows - 1) * ld + cols);
}

/**
 * C (+)= op(A) op(B) in f32 on the runtime's threads (see MatmulArgs). Products of fewer than
 * `minParallelMadds` multiply-adds (over the whole batch) stay on the calling thread.
 */
export function matmulF32(rt: KernelRuntime, p: MatmulArgs, minParallelMadds = MIN_PARALLEL_MADDS): void {
  runMatmul(rt, p, 'matmulF32', 'matmul', 4, minParallelMadds);
}

/**
 * Checks a matmul's arguments and runs the WebAssembly kernel `kernel` (`matmul`, or
 * `matmul_bf16b` whose B elements are `bBytes` = 2 bytes of bfloat16; fast/bf16.ts); `fn` names
 * the caller in errors.
 */
export function runMatmul(
  rt: KernelRuntime,
  p: MatmulArgs,
  fn: string,
  kernel: 'matmul' | 'matmul_bf16b',
  bBytes: 2 | 4,
  minParallelMadds = MIN_PARALLEL_MADDS,
): void {
  const { a, b, c, M, N, K, transA, transB } = p;
  const accumulate = p.accumulate ?? 0,
    batch = p.batch ?? 1;
  const lda = p.lda ?? (transA ? M : K),
    ldb = p.ldb ?? (transB ? K : N),
    ldc = p.ldc ?? N;
  const strideA = p.strideA ?? M * K,
    strideB = p.strideB ?? K * N,
    strideC = p.strideC ?? M * N;
  for (const [name, v] of Object.entries({ M, N, K, batch, lda, ldb, ldc, strideA, strideB, strideC })) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new Error(`${fn}: ${name} = ${v} must be a non-negative int32`);
    }
  }
  if (lda < (transA ? M : K) || ldb < (transB ? K : N) || ldc < N) {
    throw new Error(
      `${fn}: row strides lda=${lda}, ldb=${ldb}, ldc=${ldc} are shorter than the rows ` +
        `(M=${M}, N=${N}, K=${K}, transA=${transA}, transB=${transB})`,
    );
  }
  if (strideC === 0 && batch > 1) {
    throw new Error(
      `${fn}: strideC = 0 with batch = ${batch} would write one C from several threads ` +
        '(to sum products over a batch, fold the batch into K instead)',
    );
  }
  if (M === 0 || N === 0 || batch === 0) return;
  const bytes = rt.memory.buffer.byteLength;
  const spans: [string, number, number][] = [
    ['A', a, K === 0 ? a : end(a, transA ? K : M, transA ? M : K, lda, batch, strideA)],
    ['B', b, K === 0 ? b : end(b, transB ? N : K, transB ? K : N, ldb, batch, strideB, bBytes)],
    ['C', c, end(c, M, N, ldc, batch, strideC)],
  ];
  for (const [name, from, to] of spans) {
    if (from < 0 || to > bytes || from % (name === 'B' ? bBytes : 4) !== 0) {
      throw new Error(
        `${fn}: ${name} spans bytes [${from}, ${to}) but the memory has ${bytes} ` +
          '(a freed or misaligned pointer, or wrong sizes/strides?)',
      );
    }
  }
  const units = rt.fn.matmul_units(M, N, batch);
  const single = M * N * K * batch < minParallelMadds;
  rt.run(
    kernel,
    [a, b, c, M, N, K, lda, ldb, ldc, transA, transB, accumulate, batch, strideA, strideB, strideC],
    units,
    1,
    single ? units + 1 : 1,
  );
}
