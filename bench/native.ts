// Native matmul benchmark (src/backend/cpu/native.ts) beside the WebAssembly kernel, on the same
// runtime and buffers: one JSON line per shape, layout, thread count and implementation.
// Run: npm run build && npm run bench:native [-- --wasm=0] [-- --shapes 1024x256x8192,...] (m x k x n)
// --wasm=0 skips the WebAssembly lines; the default shapes are 1024^3 and (512 x 768)(768 x 3072).
import { availableParallelism } from 'node:os';
import { matmulF32, type MatmulArgs } from '../src/backend/cpu/fast/matmul.js';
import { loadNative, nativeLoadError, nativeMatmul } from '../src/backend/cpu/native.js';
import { KernelRuntime } from '../src/backend/cpu/runtime.js';

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

const addon = await loadNative();
if (addon === null) {
  console.error(`bench/native: ${nativeLoadError}`);
  process.exit(1);
}
const withWasm = !process.argv.includes('--wasm=0');
const at = process.argv.indexOf('--shapes');
const shapes = at > 0 ? process.argv[at + 1].split(',').map((s) => s.split('x').map(Number)) : [[1024, 1024, 1024], [512, 768, 3072]]; // m, k, n
const layouts: [string, 0 | 1, 0 | 1][] = [['nn', 0, 0], ['nt', 0, 1], ['tn', 1, 0]];
for (const threads of [...new Set([1, availableParallelism()])]) {
  const rt = await KernelRuntime.create({ threads });
  for (const [m, k, n] of shapes) {
    const a = rt.malloc(m * k * 4), b = rt.malloc(k * n * 4), c = rt.malloc(m * n * 4);
    const f32 = rt.heap().f32;
    for (let i = 0; i < m * k; i++) f32[a / 4 + i] = Math.random() * 2 - 1;
    for (let i = 0; i < k * n; i++) f32[b / 4 + i] = Math.random() * 2 - 1;
    for (const [trans, transA, transB] of layouts) {
      const args: MatmulArgs = { a, b, c, M: m, N: n, K: k, transA, transB };
      const impls: [string, () => void][] = [['native', () => nativeMatmul(rt, args)]];
      if (withWasm) impls.push(['wasm', () => matmulF32(rt, args)]);
      for (const [impl, run] of impls) {
        const { best, median } = time(run, 3, 10);
        const flops = 2 * m * n * k;
        console.log(JSON.stringify({
          bench: 'matmul', impl, m, k, n, threads, trans, gflops: +(flops / best / 1e9).toFixed(2),
          median_gflops: +(flops / median / 1e9).toFixed(2), ...(impl === 'native' ? { kernel: addon.info().kernel } : { relaxed: rt.relaxed }),
        }));
      }
    }
    rt.free(a); rt.free(b); rt.free(c);
  }
  await rt.close();
}
