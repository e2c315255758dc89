// Kernel benchmarks of the CPU backend: prints one JSON line per measurement.
// Run: npm run build && npm run bench:kernels [-- [filter] [--plain] [--threads N] [--runs N]],
// e.g. `-- matmul`. --plain: the SIMD build without relaxed-SIMD FMA; --threads: the multi-thread
// runtime's size (default: all cores); --runs: timed runs per case (default 15).
// Every case runs on a 1-thread runtime and on an all-cores runtime, alternating between them so
// that load from other processes hits both alike; lines report the best run (and the median).
import { availableParallelism } from 'node:os';
import { KernelRuntime } from '../src/backend/cpu/runtime.js';
import { matmulF32 } from '../src/backend/cpu/fast/matmul.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const WARMUP = 3, RUNS = option('--runs', 15);

/** Seconds of each call of fn(rt) for every runtime, interleaved: [runtime][run]. */
function timeEach(rts: KernelRuntime[], fn: (rt: KernelRuntime) => void): number[][] {
  for (let i = 0; i < WARMUP; i++) for (const rt of rts) fn(rt);
  const times = rts.map(() => [] as number[]);
  for (let i = 0; i < RUNS; i++) {
    rts.forEach((rt, r) => {
      const t0 = process.hrtime.bigint();
      fn(rt);
      times[r].push(Number(process.hrtime.bigint() - t0) / 1e9);
    });
  }
  return times;
}

function bestAndMedian(t: number[]): { best: number; median: number } {
  const s = [...t].sort((x, y) => x - y);
  return { best: s[0], median: s[s.length >> 1] };
}

function randomFill(rt: KernelRuntime, ptr: number, n: number): void {
  const f32 = rt.heap().f32;
  for (let i = 0; i < n; i++) f32[(ptr >> 2) + i] = Math.random() * 2 - 1;
}

/** GFLOP/s of C = op(A) op(B) at m x k x n: nn, nt (x W^T, Linear forward) and tn (dW = dY^T X). */
function benchMatmul(rts: KernelRuntime[]): void {
  const shapes = [[1024, 1024, 1024], [512, 768, 3072]];
  const layouts: [string, 0 | 1, 0 | 1][] = [['nn', 0, 0], ['nt', 0, 1], ['tn', 1, 0]];
  for (const [m, k, n] of shapes) {
    const bufs = rts.map((rt) => {
      const a = rt.malloc(m * k * 4), b = rt.malloc(k * n * 4), c = rt.malloc(m * n * 4);
      randomFill(rt, a, m * k);
      randomFill(rt, b, k * n);
      return { a, b, c };
    });
    for (const [trans, transA, transB] of layouts) {
      const times = timeEach(rts, (rt) => {
        const { a, b, c } = bufs[rts.indexOf(rt)];
        matmulF32(rt, { a, b, c, M: m, N: n, K: k, transA, transB });
      });
      rts.forEach((rt, r) => {
        const { best, median } = bestAndMedian(times[r]), flops = 2 * m * n * k;
        console.log(JSON.stringify({
          bench: 'matmul', m, k, n, threads: rt.threads, ...(trans === 'nn' ? {} : { trans }),
          gflops: +(flops / best / 1e9).toFixed(2), median_gflops: +(flops / median / 1e9).toFixed(2),
          relaxed: rt.relaxed,
        }));
      });
    }
    rts.forEach((rt, r) => {
      rt.free(bufs[r].a); rt.free(bufs[r].b); rt.free(bufs[r].c);
    });
  }
}

const filter = args.find((x, i) => !x.startsWith('--') && !args[i - 1]?.match(/^--(threads|runs)$/)) ?? '';
const relaxed = !args.includes('--plain');
const rts: KernelRuntime[] = [];
for (const threads of new Set([1, option('--threads', availableParallelism())])) {
  rts.push(await KernelRuntime.create({ threads, relaxed }));
}
if ('matmul'.includes(filter)) benchMatmul(rts);
for (const rt of rts) await rt.close();
