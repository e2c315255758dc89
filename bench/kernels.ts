// Kernel benchmarks of the CPU backend: prints one JSON line per measurement.
// Run: npm run build && npm run bench:kernels [-- filter], e.g. `-- matmul`.
import { availableParallelism } from 'node:os';
import { KernelRuntime } from '../src/backend/cpu/runtime.js';
import { matmulF32 } from '../src/backend/cpu/fast/matmul.js';

/** Best and median seconds of `runs` calls after `warmup` calls. */
function time(fn: () => void, warmup: number, runs: number): { best: number; median: number } {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  t.sort((x, y) => x - y);
  return { best: t[0], median: t[t.length >> 1] };
}

function randomFill(rt: KernelRuntime, ptr: number, n: number): void {
  const f32 = rt.heap().f32;
  for (let i = 0; i < n; i++) f32[(ptr >> 2) + i] = Math.random() * 2 - 1;
}

/** GFLOP/s of C = op(A) op(B) at m x k x n for nn, nt (x W^T) and tn (A^T dC) layouts. */
function benchMatmul(rt: KernelRuntime): void {
  const shapes = [[1024, 1024, 1024], [512, 768, 3072]];
  const layouts: [string, 0 | 1, 0 | 1][] = [['nn', 0, 0], ['nt', 0, 1], ['tn', 1, 0]];
  for (const [m, k, n] of shapes) {
    const a = rt.malloc(m * k * 4), b = rt.malloc(k * n * 4), c = rt.malloc(m * n * 4);
    randomFill(rt, a, m * k);
    randomFill(rt, b, k * n);
    for (const [trans, transA, transB] of layouts) {
      const run = () => matmulF32(rt, { a, b, c, M: m, N: n, K: k, transA, transB });
      const flops = 2 * m * n * k;
      const { best, median } = time(run, 3, 15);
      console.log(JSON.stringify({
        bench: 'matmul', m, k, n, threads: rt.threads, ...(trans === 'nn' ? {} : { trans }),
        gflops: +(flops / best / 1e9).toFixed(2), median_gflops: +(flops / median / 1e9).toFixed(2),
        relaxed: rt.relaxed,
      }));
    }
    rt.free(a); rt.free(b); rt.free(c);
  }
}

const filter = process.argv[2] ?? '';
const threadCounts = [...new Set([1, availableParallelism()])];
for (const threads of threadCounts) {
  const rt = await KernelRuntime.create({ threads });
  if ('matmul'.includes(filter)) benchMatmul(rt);
  await rt.close();
}
