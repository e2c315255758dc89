// The native kernels (native/: a Node addon built at install, AVX-512 / AVX2 code on its own
// threads): matmul, fused attention forward / backward, and the memory-bound AdamW step, sum of
// squares, affine and embedding lookup / gradient. Each operand is handed over where it lies: a
// byte offset into the runtime's shared WebAssembly memory (a number), or a Uint8Array holding
// the operand from its byte 0 (a tensor the pager moved out of that memory, pager.ts). Node only
// and optional: when the addon is missing, disabled (TSDPO_NATIVE=0, or `native: false` in the
// engine options) or on another platform, the WebAssembly kernels run instead. Same arguments and
// semantics as fast/matmul.ts, fast/attention.ts, fast/optim.ts, fast/elementwise.ts and
// fast/embedding.ts; the memory-bound kernels give those kernels' bits (native/src/stream.h).
import type { AttentionArgs } from './fast/attention.js';
import type { MatmulArgs } from './fast/matmul.js';
import { SUMSQ_CHUNK } from '../ref/optim.js';
import { isNode } from './platform.js';
import type { KernelRuntime } from './runtime.js';

/**
 * Where an operand lies: a byte offset into the runtime's memory, or a Uint8Array of its own
 * whose bytes from 0 hold it (checked for length and alignment like an offset).
 */
export type Operand = number | Uint8Array;

/** MatmulArgs with a, b, c anywhere (Operand). */
export type NativeMatmulArgs = Omit<MatmulArgs, 'a' | 'b' | 'c'> & { a: Operand; b: Operand; c: Operand };

/** AttentionArgs with q, k, v, mask, out, lse anywhere; mask 0 (the number) for none. */
export type NativeAttentionArgs = Omit<AttentionArgs, 'q' | 'k' | 'v' | 'mask' | 'out' | 'lse'> & {
  q: Operand;
  k: Operand;
  v: Operand;
  mask: Operand;
  out: Operand;
  lse: Operand;
};

/** AttentionGradArgs with every tensor anywhere. */
export type NativeAttentionGradArgs = NativeAttentionArgs & { dout: Operand; dq: Operand; dk: Operand; dv: Operand };

/** What native/src/addon.cc exports. */
export interface NativeAddon {
  /** docs/kernels.md `matmul`; `heap` is a Uint8Array over the runtime's memory; a, b, c Operands. */
  matmul(
    heap: Uint8Array,
    threads: number,
    a: Operand,
    b: Operand,
    c: Operand,
    M: number,
    N: number,
    K: number,
    lda: number,
    ldb: number,
    ldc: number,
    transA: number,
    transB: number,
    accumulate: number,
    batch: number,
    strideA: number,
    strideB: number,
    strideC: number,
    /** 1: B holds bfloat16 bits (ldb, strideB in elements), widened exactly as it is packed. */
    bBf16: number,
  ): void;
  /** docs/kernels.md `attention`; mask 0 for none. */
  attention(
    heap: Uint8Array,
    threads: number,
    q: Operand,
    k: Operand,
    v: Operand,
    mask: Operand,
    out: Operand,
    lse: Operand,
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    Dh: number,
    scale: number,
    causal: number,
    window: number,
    softcap: number,
  ): void;
  /** docs/kernels.md `attention_grad`. */
  attentionGrad(
    heap: Uint8Array,
    threads: number,
    q: Operand,
    k: Operand,
    v: Operand,
    mask: Operand,
    out: Operand,
    lse: Operand,
    dout: Operand,
    dq: Operand,
    dk: Operand,
    dv: Operand,
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    Dh: number,
    scale: number,
    causal: number,
    window: number,
    softcap: number,
  ): void;
  /** One AdamW step (fast/optim.ts adamw) over n floats; fused 1: `madd` as an FMA (the relaxed-SIMD build). */
  adamw(
    heap: Uint8Array,
    threads: number,
    p: Operand,
    g: Operand,
    m: Operand,
    v: Operand,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
    fused: number,
  ): void;
  /** Sum of squares in float64, by chunks of `chunk` elements (assembly/optim.ts sumsq), partials in order. */
  sumsq(heap: Uint8Array, threads: number, x: Operand, n: number, chunk: number): number;
  /** out = x * scale + shift (fast/elementwise.ts affine); out may be x. */
  affine(
    heap: Uint8Array,
    threads: number,
    x: Operand,
    out: Operand,
    scale: number,
    shift: number,
    n: number,
    fused: number,
  ): void;
  /** out = a + b over n floats (dense operands; out may be a or b, else disjoint from both). */
  add(heap: Uint8Array, threads: number, a: Operand, b: Operand, out: Operand, n: number): void;
  /** out[r] = weight[ids[r]] (fast/embedding.ts; bf16 1: weight holds bfloat16 bits, widened exactly). */
  embedding(
    heap: Uint8Array,
    threads: number,
    weight: Operand,
    ids: Operand,
    out: Operand,
    N: number,
    D: number,
    V: number,
    bf16: number,
  ): void;
  /** dweight[ids[r]] += dy[r] for r in order (fast/embedding.ts embeddingGrad). */
  embeddingGrad(
    heap: Uint8Array,
    threads: number,
    dy: Operand,
    ids: Operand,
    dweight: Operand,
    N: number,
    D: number,
    V: number,
  ): void;
  /** The instruction set in use and those this CPU runs, e.g. { kernel: 'avx512', available: 'avx512,avx2,scalar' }. */
  info(): { kernel: string; available: string };
  /** Picks the instruction set ('auto', 'avx512', 'avx2', 'scalar'; for tests); false when this CPU lacks it. */
  select(name: string): boolean;
  /** y = e^x by the attention kernels' exp (the selected instruction set's); for tests. */
  exp(x: Float32Array, y: Float32Array): void;
}

/** Where the build puts the addon, relative to this file (dist/src/backend/cpu/native.js). */
const ADDON = '../../../../native/build/Release/tsdpo_native.node';

let addon: NativeAddon | null = null;
let loading: Promise<NativeAddon | null> | null = null;
/** Why the addon did not load (null when it did or was not tried). */
export let nativeLoadError: string | null = null;

/** False when TSDPO_NATIVE=0 is set: the native kernels stay off whatever the options say. */
export function nativeAllowed(): boolean {
  return !(isNode && process.env.TSDPO_NATIVE === '0');
}

/** Loads the addon once (Node only); resolves to null when it is not built or fails to load. */
export function loadNative(): Promise<NativeAddon | null> {
  loading ??= (async () => {
    if (!isNode) return null;
    try {
      const { requireAddon } = await import('#host');
      const loadedAddon = requireAddon(ADDON, import.meta.url) as NativeAddon;
      // Without AVX2 or AVX-512 (or off x86-64) the addon has only portable C++, which the
      // WebAssembly SIMD kernels beat: keep those.
      if (loadedAddon.info().kernel === 'scalar') nativeLoadError = 'native addon has no SIMD kernels for this CPU';
      else addon = loadedAddon;
    } catch (e) {
      nativeLoadError =
        `native addon not loaded ` + `(${(e as Error).message.split('\n')[0]}); run ` + `\`npm run build:native\``;
    }
    return addon;
  })();
  return loading;
}

function loaded(fn: string): NativeAddon {
  if (addon === null) throw new Error(`${fn}: ${nativeLoadError ?? 'call loadNative() first'}`);
  return addon;
}

/**
 * C (+)= op(A) op(B) in f32 by the native addon, with the same arguments and results (bit for
 * bit across thread counts) as fast/matmul.ts's matmulF32, on `rt.threads` threads of its own.
 */
export function nativeMatmul(rt: KernelRuntime, p: NativeMatmulArgs): void {
  matmulWith(loaded('nativeMatmul'), rt, p, 0);
}

/**
 * The same with B stored as bfloat16 bits (2 bytes an element; strides still in elements): the
 * addon widens B exactly while packing it, so C is bit for bit nativeMatmul's on the widened B,
 * without a widened copy of B in memory.
 */
export function nativeMatmulBf16B(rt: KernelRuntime, p: NativeMatmulArgs): void {
  matmulWith(loaded('nativeMatmulBf16B'), rt, p, 1);
}

function matmulWith(addon: NativeAddon, rt: KernelRuntime, p: NativeMatmulArgs, bBf16: 0 | 1): void {
  const { M, N, K, transA, transB } = p;
  const lda = p.lda ?? (transA ? M : K),
    ldb = p.ldb ?? (transB ? K : N),
    ldc = p.ldc ?? N;
  const strideA = p.strideA ?? M * K,
    strideB = p.strideB ?? K * N,
    strideC = p.strideC ?? M * N;
  addon.matmul(
    rt.heap().u8,
    rt.threads,
    p.a,
    p.b,
    p.c,
    M,
    N,
    K,
    lda,
    ldb,
    ldc,
    transA,
    transB,
    p.accumulate ?? 0,
    p.batch ?? 1,
    strideA,
    strideB,
    strideC,
    bBf16,
  );
}

/** out, lse = attention(q, k, v) by the native addon (fast/attention.ts's attentionF32). */
export function nativeAttention(rt: KernelRuntime, a: NativeAttentionArgs): void {
  loaded('nativeAttention').attention(
    rt.heap().u8,
    rt.threads,
    a.q,
    a.k,
    a.v,
    a.mask,
    a.out,
    a.lse,
    a.B,
    a.T,
    a.S,
    a.H,
    a.Hkv,
    a.Dh,
    a.scale,
    a.causal ? 1 : 0,
    a.window ?? 0,
    a.softcap ?? 0,
  );
}

/** dq, dk, dv of attention by the native addon (fast/attention.ts's attentionGradF32). */
export function nativeAttentionGrad(rt: KernelRuntime, a: NativeAttentionGradArgs): void {
  loaded('nativeAttentionGrad').attentionGrad(
    rt.heap().u8,
    rt.threads,
    a.q,
    a.k,
    a.v,
    a.mask,
    a.out,
    a.lse,
    a.dout,
    a.dq,
    a.dk,
    a.dv,
    a.B,
    a.T,
    a.S,
    a.H,
    a.Hkv,
    a.Dh,
    a.scale,
    a.causal ? 1 : 0,
    a.window ?? 0,
    a.softcap ?? 0,
  );
}

/**
 * One torch.optim.AdamW step by the native addon: p, m, v updated in place, bit for bit
 * fast/optim.ts's adamw on this runtime's build (rt.relaxed: its `madd` is fused). p, g, m, v
 * must not overlap.
 */
export function nativeAdamw(
  rt: KernelRuntime,
  p: Operand,
  g: Operand,
  m: Operand,
  v: Operand,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  bc1: number,
  bc2: number,
): void {
  loaded('nativeAdamw').adamw(
    rt.heap().u8,
    rt.threads,
    p,
    g,
    m,
    v,
    n,
    lr,
    beta1,
    beta2,
    eps,
    weightDecay,
    bc1,
    bc2,
    rt.relaxed ? 1 : 0,
  );
}

/**
 * Sum of x[i]^2 over n floats in float64: the total backend.ts's sumSquares adds from
 * fast/optim.ts's sumsq partials (one per SUMSQ_CHUNK elements, summed in chunk order).
 */
export function nativeSumsq(rt: KernelRuntime, x: Operand, n: number): number {
  return loaded('nativeSumsq').sumsq(rt.heap().u8, rt.threads, x, n, SUMSQ_CHUNK);
}

/** out = x * scale + shift over n floats (scale, shift rounded to float32), as fast/elementwise.ts's affine. */
export function nativeAffine(
  rt: KernelRuntime,
  x: Operand,
  out: Operand,
  scale: number,
  shift: number,
  n: number,
): void {
  loaded('nativeAffine').affine(rt.heap().u8, rt.threads, x, out, scale, shift, n, rt.relaxed ? 1 : 0);
}

/** out = a + b over n floats, as fast/elementwise.ts's binary add of dense operands (out may be a or b). */
export function nativeAdd(rt: KernelRuntime, a: Operand, b: Operand, out: Operand, n: number): void {
  loaded('nativeAdd').add(rt.heap().u8, rt.threads, a, b, out, n);
}

/**
 * out[r] = weight[ids[r]]: weight [V, D] (float32, or bfloat16 bits widened exactly when bf16 is
 * 1), ids [N] int32, out [N, D]; as fast/embedding.ts's embedding / fast/bf16.ts's embeddingBf16.
 * An id outside [0, V) throws a RangeError naming the row and the id (nothing written).
 */
export function nativeEmbedding(
  rt: KernelRuntime,
  weight: Operand,
  ids: Operand,
  out: Operand,
  N: number,
  D: number,
  V: number,
  bf16: 0 | 1,
): void {
  loaded('nativeEmbedding').embedding(rt.heap().u8, rt.threads, weight, ids, out, N, D, V, bf16);
}

/** dweight[ids[r]] += dy[r] (dweight zeroed by the caller), as fast/embedding.ts's embeddingGrad. */
export function nativeEmbeddingGrad(
  rt: KernelRuntime,
  dy: Operand,
  ids: Operand,
  dweight: Operand,
  N: number,
  D: number,
  V: number,
): void {
  loaded('nativeEmbeddingGrad').embeddingGrad(rt.heap().u8, rt.threads, dy, ids, dweight, N, D, V);
}
