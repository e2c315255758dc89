// Kernel benchmarks of the CPU backend: prints one JSON line per measurement.
// Run: npm run build && npm run bench:kernels [-- [filter] [--plain] [--threads N] [--runs N]],
// e.g. `-- matmul` or `-- gpt2_block`. --plain: the SIMD build without relaxed-SIMD FMA; --threads: the multi-thread
// runtime's size (default: all cores); --runs: timed runs per case (default 15).
// Every case runs on a 1-thread runtime and on an all-cores runtime, alternating between them so
// that load from other processes hits both alike; lines report the best run (and the median).
// Matmul lines are the WebAssembly kernels (`npm run bench:native` puts the native addon beside
// them); the GPT-2 block runs through the engine with each ("impl": "wasm", and "native" when built).
import { availableParallelism } from 'node:os';
import { KernelRuntime } from '../src/backend/cpu/runtime.js';
import { matmulF32 } from '../src/backend/cpu/fast/matmul.js';
import { CpuBackend } from '../src/backend/cpu/backend.js';
import { loadNative } from '../src/backend/cpu/native.js';
import { randomFill } from './helpers.js';
import * as E from '../src/core/index.js';
import { Rng, setBackend } from '../src/core/index.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const WARMUP = 3,
  RUNS = option('--runs', 15);

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

/** GFLOP/s of C = op(A) op(B) at m x k x n: nn, nt (x W^T, Linear forward) and tn (dW = dY^T X). */
function benchMatmul(rts: KernelRuntime[]): void {
  const shapes = [
    [1024, 1024, 1024],
    [512, 768, 3072],
  ];
  const layouts: [string, 0 | 1, 0 | 1][] = [
    ['nn', 0, 0],
    ['nt', 0, 1],
    ['tn', 1, 0],
  ];
  for (const [m, k, n] of shapes) {
    const bufs = rts.map((rt) => {
      const a = rt.malloc(m * k * 4),
        b = rt.malloc(k * n * 4),
        c = rt.malloc(m * n * 4);
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
        const { best, median } = bestAndMedian(times[r]),
          flops = 2 * m * n * k;
        console.log(
          JSON.stringify({
            bench: 'matmul',
            m,
            k,
            n,
            threads: rt.threads,
            ...(trans === 'nn' ? {} : { trans }),
            gflops: +(flops / best / 1e9).toFixed(2),
            median_gflops: +(flops / median / 1e9).toFixed(2),
            relaxed: rt.relaxed,
          }),
        );
      });
    }
    rts.forEach((rt, r) => {
      rt.free(bufs[r].a);
      rt.free(bufs[r].b);
      rt.free(bufs[r].c);
    });
  }
}

/**
 * Forward + backward of one GPT-2-small block (batch 4, seq 256, d 768, 12 heads, pre-LayerNorm,
 * tanh-GELU, causal attention) through the engine, as the PyTorch / tfjs / jax-js figures.
 */
async function benchGpt2Block(rts: KernelRuntime[]): Promise<void> {
  const B = 4,
    T = 256,
    C = 768,
    H = 12;
  const impls: [string, boolean][] = [['wasm', false]];
  if ((await loadNative()) !== null) impls.push(['native', true]);
  for (const [impl, native] of impls)
    for (const rt of rts) {
      const backend = new CpuBackend(rt, { native });
      setBackend(backend);
      const rng = new Rng(0);
      const rand = (shape: number[], std: number) =>
        E.keep(
          E.param(
            E.tensor(
              Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal() * std),
              shape,
            ),
          ),
        );
      const ones = (n: number) => E.keep(E.param(E.ones([n]))),
        zeros = (n: number) => E.keep(E.param(E.zeros([n])));
      const p = {
        ln1w: ones(C),
        ln1b: zeros(C),
        attnW: rand([3 * C, C], 0.02),
        attnB: zeros(3 * C),
        projW: rand([C, C], 0.02),
        projB: zeros(C),
        ln2w: ones(C),
        ln2b: zeros(C),
        fcW: rand([4 * C, C], 0.02),
        fcB: zeros(4 * C),
        outW: rand([C, 4 * C], 0.02),
        outB: zeros(C),
      };
      const x = E.keep(
        E.tensor(
          Float32Array.from({ length: B * T * C }, () => rng.normal()),
          [B, T, C],
        ),
      );
      const step = (): void =>
        E.tidy(() => {
          const h = E.layerNorm(x, p.ln1w, p.ln1b, 1e-5);
          const [q, k, v] = E.split(E.linear(h, p.attnW, p.attnB), 2, [C, C, C]).map((t) =>
            E.reshape(t, [B, T, H, C / H]),
          ); // (B, T, H, hs)
          const a = E.reshape(E.attention(q, k, v, { causal: true }), [B, T, C]);
          const x1 = E.add(x, E.linear(a, p.projW, p.projB));
          const m = E.linear(
            E.gelu(E.linear(E.layerNorm(x1, p.ln2w, p.ln2b, 1e-5), p.fcW, p.fcB), 'tanh'),
            p.outW,
            p.outB,
          );
          E.backward(E.sum(E.add(x1, m)));
          for (const t of Object.values(p)) {
            t.grad?.dispose();
            t.grad = null;
          }
        });
      const times: number[] = [];
      for (let i = 0; i < WARMUP + RUNS; i++) {
        const t0 = process.hrtime.bigint();
        step();
        if (i >= WARMUP) times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
      const { best, median } = bestAndMedian(times);
      console.log(
        JSON.stringify({
          bench: 'gpt2_block_fwd_bwd',
          impl,
          threads: rt.threads,
          seconds: +best.toFixed(4),
          median_seconds: +median.toFixed(4),
          batch: B,
          seq: T,
          d: C,
          heads: H,
        }),
      );
      for (const t of [...Object.values(p), x]) t.dispose();
    }
}

const filter = args.find((x, i) => !x.startsWith('--') && !args[i - 1]?.match(/^--(threads|runs)$/)) ?? '';
const relaxed = !args.includes('--plain');
const rts: KernelRuntime[] = [];
for (const threads of new Set([1, option('--threads', availableParallelism())])) {
  rts.push(await KernelRuntime.create({ threads, relaxed }));
}
if ('matmul'.includes(filter)) benchMatmul(rts);
if ('gpt2_block_fwd_bwd'.includes(filter)) await benchGpt2Block(rts);
for (const rt of rts) await rt.close();
