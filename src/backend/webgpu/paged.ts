// WebGPU tensors larger than one storage binding (maxStorageBufferBindingSize, 128 MiB unless an
// adapter grants more: a 151,936 x 896 embedding is 545 MB in f32). Such a tensor is split by
// rows of its leading dim into pages, one buffer each (storage.ts Pages). What full fine-tuning
// does to a weight works on pages:
// - matmul with a split B (x W^T: a product per page of output columns, copied into place;
//   dy W: a product per page of K, accumulated) and with a split C (dW = dy^T x: a product per
//   page of C's rows, those rows of op(A) copied out first), embedding (a gather per page) and
//   its gradient into a split table (a scatter-add per page): paged-linalg.ts;
// - the elementwise kernels (fill, copy, cast, unary, unaryGrad, affine, binary with operands
//   broadcast along leading dims), the optimizers (adamw, rmsprop, sgd) and sumSquares: the same
//   kernel once per page (paged-elementwise.ts);
// - host reads and writes (backend.ts); the layout and page helpers are in pages.ts.
// Any other kernel given a split tensor throws, naming the kernel, the sizes and the limit.
// bfloat16 frozen weights (split or not) are read by matmul (as B) and embedding only.
import type { Storage } from '../../core/backend.js';
import type { KernelArgs, KernelName, KernelTable } from '../../core/kernels.js';
import type { GpuStorage } from './storage.js';
import type { Ctx } from './kernels/context.js';
import { isStorage, paged, refuse } from './pages.js';
import { binaryPaged, copyPaged, eachPage, type PageFn } from './paged-elementwise.js';
import { embedding, embeddingGradPaged, matmulPaged } from './paged-linalg.js';

export { pageLayout } from './pages.js';

type Handlers = { [K in KernelName]?: (a: KernelArgs[K]) => void };

/** The kernel table with split-tensor and bf16 support wrapped around `inner`. */
export function pagedKernels(ctx: Ctx, inner: KernelTable): KernelTable {
  const limit = ctx.rt.maxBinding;
  const each = (name: string, n: number, writes: (Storage | null)[], reads: (Storage | null)[], run: PageFn): void =>
    eachPage(ctx, name, n, writes, reads, run);
  const onPages: Handlers = {
    matmul: (a) => matmulPaged(ctx, inner, a),
    embedding: (a) => {
      if (paged(a.out)) refuse('embedding', a.out, limit, 'its output (activations) cannot be split');
      embedding(ctx, inner, a);
    },
    embeddingGrad: (a) => embeddingGradPaged(ctx, a),
    fill: (a) => each('fill', a.out.size, [a.out], [], (part) => inner.fill({ ...a, out: part(a.out) })),
    copy: (a) => copyPaged(ctx, inner, a),
    cast: (a) =>
      each('cast', a.n, [a.dst], [a.src], (part, n) => inner.cast({ src: part(a.src), dst: part(a.dst), n })),
    unary: (a) =>
      each('unary', a.n, [a.out], [a.x], (part, n) => inner.unary({ ...a, x: part(a.x), out: part(a.out), n })),
    unaryGrad: (a) =>
      each('unaryGrad', a.n, [a.dx], [a.x, a.dy], (part, n) =>
        inner.unaryGrad({ ...a, x: part(a.x), dy: part(a.dy), dx: part(a.dx), n }),
      ),
    affine: (a) =>
      each('affine', a.n, [a.out], [a.x], (part, n) => inner.affine({ ...a, x: part(a.x), out: part(a.out), n })),
    binary: (a) => binaryPaged(ctx, inner, a),
    adamw: (a) =>
      each('adamw', a.n, [a.p, a.m, a.v], [a.g], (part, n) =>
        inner.adamw({ ...a, p: part(a.p), g: part(a.g), m: part(a.m), v: part(a.v), n }),
      ),
    rmsprop: (a) =>
      each('rmsprop', a.n, [a.p, a.sq], [a.g], (part, n) =>
        inner.rmsprop({ ...a, p: part(a.p), g: part(a.g), sq: part(a.sq), n }),
      ),
    sgd: (a) =>
      each('sgd', a.n, [a.p, a.buf], [a.g], (part, n) =>
        inner.sgd({ ...a, p: part(a.p), g: part(a.g), buf: a.buf && part(a.buf), n }),
      ),
    // out[index] += each page's sum: the same norm, summed in a different order.
    sumSquares: (a) => each('sumSquares', a.n, [], [a.x], (part, n) => inner.sumSquares({ ...a, x: part(a.x), n })),
  };
  const out: Record<string, (a: never) => void> = {};
  for (const [name, fn] of Object.entries(inner) as [KernelName, (a: never) => void][]) {
    const handler = onPages[name] as ((a: never) => void) | undefined;
    out[name] = (a: never) => {
      let split: GpuStorage | null = null,
        half: GpuStorage | null = null;
      for (const v of Object.values(a as Record<string, unknown>)) {
        if (!isStorage(v)) continue;
        if (v.dtype === 'bf16') half = v;
        if (paged(v)) split = v;
      }
      if (split === null && half === null) return fn(a);
      if (half !== null && name !== 'matmul' && name !== 'embedding')
        throw new Error(
          `webgpu ${name}: a bfloat16 tensor of ${half.size} elements is a frozen weight, which only matmul (as B) and embedding read`,
        );
      if (handler) return handler(a);
      refuse(name, split!, limit);
    };
  }
  return out as unknown as KernelTable;
}
