// Native kernels (src/backend/cpu/native.ts) beside the WebAssembly ones, on the same runtime and
// buffers: one JSON line per shape, layout, thread count and implementation ("impl").
//
//   npm run build && npm run bench:native [-- options]
//     --only matmul|bf16|attention|stream     one of the groups
//     --stream-n 100000000                    floats of the stream group (default 100M: 1.6 GB for adamw)
//     --wasm=0                                skip the WebAssembly lines
//     --shapes 1024x256x8192,...              matmul shapes m x k x n (default 1024^3 and 512x768x3072)
//     --bf16-shapes 512x896x4864,...          shapes of the bf16 group (default: that one, Qwen2.5-0.5B's MLP,
//                                             and 1x896x4864, one decoding step)
//
// The bf16 group multiplies f32 A by a frozen weight B three ways: B in f32 ("f32"), B in bf16 read
// directly by the kernel ("bf16"), and B in bf16 widened by a pass over the whole weight into f32
// scratch before the f32 kernel ("bf16-widen", what the CPU backend did before the kernels read
// bf16). Layouts nt (x W^T, the forward) and nn (dy W, the input gradient) with B's k x n.
//
// The stream group runs the memory-bound kernels over n floats: adamw (p, g, m, v), sumsq and
// affine, natively with operands in the memory ("native") and in host Uint8Arrays ("native-host",
// as the pager hands spilled tensors over), and in WebAssembly; GB/s counts the bytes each must
// move (adamw 28 a float: 4 read, 3 written; sumsq 4; affine 8).
//
// Attention runs the DPO bench presets' shapes (small: B 8, T 128, H 8, Dh 32; gpt2: B 4, T 128,
// H 12, Dh 64), causal; its FLOP counts are those of non-causal attention (forward 4 B H T S Dh,
// backward 10 B H T S Dh, as bench/attention.ts), so the true rate is about half the printed one.
import { availableParallelism } from 'node:os';
import { attentionF32, attentionGradF32 } from '../src/backend/cpu/fast/attention.js';
import { bf16ToF32, matmulBf16B } from '../src/backend/cpu/fast/bf16.js';
import { affine } from '../src/backend/cpu/fast/elementwise.js';
import { matmulF32, type MatmulArgs } from '../src/backend/cpu/fast/matmul.js';
import { adamw, sumsq, sumsqChunks } from '../src/backend/cpu/fast/optim.js';
import {
  loadNative,
  nativeAdamw,
  nativeAffine,
  nativeAttention,
  nativeAttentionGrad,
  nativeLoadError,
  nativeMatmul,
  nativeMatmulBf16B,
  nativeSumsq,
  type Operand,
} from '../src/backend/cpu/native.js';
import { KernelRuntime } from '../src/backend/cpu/runtime.js';
import { attentionBuffers, randomFill, time } from './helpers.js';

/** A matmul over operands in the runtime's memory (either implementation). */
type MatmulFn = (rt: KernelRuntime, p: MatmulArgs) => void;

const addon = await loadNative();
if (addon === null) {
  console.error(`bench/native: ${nativeLoadError}`);
  process.exit(1);
}
const option = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const withWasm = !process.argv.includes('--wasm=0');
const only = option('only');
const kernel = addon.info().kernel;

/** GFLOP/s of C = op(A) op(B) at m x k x n for nn, nt (x W^T) and tn (A^T dC) layouts. */
function benchMatmul(rt: KernelRuntime, shapes: number[][]): void {
  const layouts: [string, 0 | 1, 0 | 1][] = [
    ['nn', 0, 0],
    ['nt', 0, 1],
    ['tn', 1, 0],
  ];
  for (const [m, k, n] of shapes) {
    const a = rt.malloc(m * k * 4),
      b = rt.malloc(k * n * 4),
      c = rt.malloc(m * n * 4);
    randomFill(rt, a, m * k);
    randomFill(rt, b, k * n);
    for (const [trans, transA, transB] of layouts) {
      const args: MatmulArgs = { a, b, c, M: m, N: n, K: k, transA, transB };
      const impls: [string, () => void][] = [['native', () => nativeMatmul(rt, args)]];
      if (withWasm) impls.push(['wasm', () => matmulF32(rt, args)]);
      for (const [impl, run] of impls) {
        const { best, median } = time(run, 3, 10),
          flops = 2 * m * n * k;
        console.log(
          JSON.stringify({
            bench: 'matmul',
            impl,
            m,
            k,
            n,
            threads: rt.threads,
            trans,
            gflops: +(flops / best / 1e9).toFixed(2),
            median_gflops: +(flops / median / 1e9).toFixed(2),
            ...(impl === 'native' ? { kernel } : { relaxed: rt.relaxed }),
          }),
        );
      }
    }
    rt.free(a);
    rt.free(b);
    rt.free(c);
  }
}

/** Milliseconds of f32 A [m, k] times a frozen weight of k x n in f32, in bf16, and bf16 widened first. */
function benchBf16(rt: KernelRuntime, shapes: number[][]): void {
  for (const [m, k, n] of shapes) {
    const a = rt.malloc(m * k * 4),
      b = rt.malloc(k * n * 4),
      bits = rt.malloc(k * n * 2),
      wide = rt.malloc(k * n * 4),
      c = rt.malloc(m * n * 4);
    randomFill(rt, a, m * k);
    randomFill(rt, b, k * n);
    // bf16 B: the top halves of B's f32 values (truncated; the timing does not depend on rounding).
    const heap = rt.heap();
    const src = new Uint16Array(heap.u8.buffer, b, 2 * k * n),
      dst = new Uint16Array(heap.u8.buffer, bits, k * n);
    for (let i = 0; i < k * n; i++) dst[i] = src[2 * i + 1];
    for (const [trans, transB] of [
      ['nt', 1],
      ['nn', 0],
    ] as const) {
      const args: MatmulArgs = { a, b, c, M: m, N: n, K: k, transA: 0, transB };
      const kernels: [string, MatmulFn, MatmulFn][] = [['native', nativeMatmul, nativeMatmulBf16B]];
      if (withWasm) kernels.push(['wasm', matmulF32, (r, p) => matmulBf16B(r, p)]);
      for (const [impl, f32, bf16] of kernels) {
        const runs: [string, () => void][] = [
          ['f32', () => f32(rt, args)],
          ['bf16', () => bf16(rt, { ...args, b: bits })],
          [
            'bf16-widen',
            () => {
              bf16ToF32(rt, bits, wide, k * n);
              f32(rt, { ...args, b: wide });
            },
          ],
        ];
        for (const [b, run] of runs) {
          const { best, median } = time(run, 2, 8);
          // CPU seconds of this process per run (all its threads), the least of 8: steadier than
          // wall time on a machine shared with other work.
          let cpu = Infinity;
          for (let i = 0; i < 8; i++) {
            const t0 = process.cpuUsage();
            run();
            const d = process.cpuUsage(t0);
            cpu = Math.min(cpu, (d.user + d.system) / 1e6);
          }
          console.log(
            JSON.stringify({
              bench: 'matmul_bf16',
              impl,
              b,
              m,
              k,
              n,
              threads: rt.threads,
              trans,
              ms: +(best * 1e3).toFixed(2),
              median_ms: +(median * 1e3).toFixed(2),
              cpu_ms: +(cpu * 1e3).toFixed(2),
              gflops: +((2 * m * n * k) / best / 1e9).toFixed(2),
              ...(impl === 'native' ? { kernel } : { relaxed: rt.relaxed }),
            }),
          );
        }
      }
    }
    for (const ptr of [a, b, bits, wide, c]) rt.free(ptr);
  }
}

interface Shape {
  preset: string;
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  Dh: number;
}

function benchAttention(rt: KernelRuntime, { preset, ...shape }: Shape): void {
  const { B, T, S, H, Dh } = shape;
  const p = attentionBuffers(rt, shape);
  const args = { ...p, mask: 0, ...shape, causal: true, scale: 1 / Math.sqrt(Dh) },
    base = B * H * T * S * Dh;
  const impls: [string, () => void, () => void][] = [
    ['native', () => nativeAttention(rt, args), () => nativeAttentionGrad(rt, args)],
  ];
  if (withWasm) impls.push(['wasm', () => attentionF32(rt, args), () => attentionGradF32(rt, args)]);
  for (const [impl, fwd, bwd] of impls) {
    for (const [bench, run, flops] of [
      ['attention', fwd, 4 * base],
      ['attention_grad', bwd, 10 * base],
    ] as const) {
      const t = time(run, 3, 20);
      console.log(
        JSON.stringify({
          bench,
          impl,
          preset,
          ...shape,
          causal: true,
          threads: rt.threads,
          ms: +(t.best * 1e3).toFixed(3),
          median_ms: +(t.median * 1e3).toFixed(3),
          gflops: +(flops / t.best / 1e9).toFixed(2),
          flops: 'non-causal count',
        }),
      );
    }
  }
  for (const ptr of Object.values(p)) rt.free(ptr);
}

/** GB/s of the memory-bound kernels over n floats, operands in the memory or in host arrays. */
function benchStream(rt: KernelRuntime, n: number): void {
  const ptrs = [0, 1, 2, 3].map(() => rt.malloc(4 * n));
  for (const p of ptrs) randomFill(rt, p, n, 0.01);
  const host = ptrs.map((p) => rt.heap().u8.slice(p, p + 4 * n));
  const parts = rt.malloc(8 * sumsqChunks(n));
  const hyper = [1e-3, 0.9, 0.999, 1e-8, 0.01, 0.1, 0.001] as const;
  const step = (f: typeof nativeAdamw, o: Operand[]) => () => f(rt, o[0], o[1], o[2], o[3], n, ...hyper);
  const runs: [string, string, number, () => void][] = [
    ['adamw', 'native', 28, step(nativeAdamw, ptrs)],
    ['adamw', 'native-host', 28, step(nativeAdamw, host)],
    ['sumsq', 'native', 4, () => nativeSumsq(rt, ptrs[1], n)],
    ['sumsq', 'native-host', 4, () => nativeSumsq(rt, host[1], n)],
    ['affine', 'native', 8, () => nativeAffine(rt, ptrs[1], ptrs[2], 0.5, 0, n)],
    ['affine', 'native-host', 8, () => nativeAffine(rt, host[1], host[2], 0.5, 0, n)],
  ];
  if (withWasm) {
    runs.push(['adamw', 'wasm', 28, step(adamw as typeof nativeAdamw, ptrs)]);
    runs.push(['sumsq', 'wasm', 4, () => sumsq(rt, ptrs[1], n, parts)]);
    runs.push(['affine', 'wasm', 8, () => affine(rt, ptrs[1], ptrs[2], 0.5, 0, n)]);
  }
  for (const [bench, impl, bytes, run] of runs) {
    const t = time(run, 1, 5);
    console.log(
      JSON.stringify({
        bench,
        impl,
        n,
        threads: rt.threads,
        ms: +(t.best * 1e3).toFixed(2),
        median_ms: +(t.median * 1e3).toFixed(2),
        gbs: +((bytes * n) / t.best / 1e9).toFixed(2),
        ...(impl === 'wasm' ? { relaxed: rt.relaxed } : { kernel }),
      }),
    );
  }
  for (const p of [...ptrs, parts]) rt.free(p);
}

const shapes = option('shapes')
  ?.split(',')
  .map((s) => s.split('x').map(Number)) ?? [
  [1024, 1024, 1024],
  [512, 768, 3072],
];
const bf16Shapes = option('bf16-shapes')
  ?.split(',')
  .map((s) => s.split('x').map(Number)) ?? [
  [512, 896, 4864],
  [1, 896, 4864],
];
const attentionShapes: Shape[] = [
  { preset: 'small', B: 8, T: 128, S: 128, H: 8, Hkv: 8, Dh: 32 },
  { preset: 'gpt2', B: 4, T: 128, S: 128, H: 12, Hkv: 12, Dh: 64 },
];
for (const threads of [...new Set([1, availableParallelism()])]) {
  const rt = await KernelRuntime.create({ threads });
  if (only === undefined || only === 'matmul') benchMatmul(rt, shapes);
  if (only === undefined || only === 'bf16') benchBf16(rt, bf16Shapes);
  if (only === undefined || only === 'attention') for (const shape of attentionShapes) benchAttention(rt, shape);
  if (only === undefined || only === 'stream') benchStream(rt, Number(option('stream-n') ?? 100_000_000));
  await rt.close();
}
