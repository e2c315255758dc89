// The native kernels (native/: a Node addon built at install, AVX-512 / AVX2 code on its own
// threads): matmul and fused attention forward / backward, working in place on the runtime's
// shared WebAssembly memory. Node only and optional: when the addon is missing, disabled
// (TSDPO_NATIVE=0, or `native: false` in the engine options) or on another platform, the
// WebAssembly kernels run instead. Same arguments and semantics as fast/matmul.ts and
// fast/attention.ts.
import type { AttentionArgs, AttentionGradArgs } from './fast/attention.js';
import type { MatmulArgs } from './fast/matmul.js';
import { isNode } from './platform.js';
import type { KernelRuntime } from './runtime.js';

/** What native/src/addon.cc exports. */
export interface NativeAddon {
  /** docs/kernels.md `matmul`; `heap` is a Uint8Array over the runtime's memory, a, b, c byte offsets in it. */
  matmul(
    heap: Uint8Array,
    threads: number,
    a: number,
    b: number,
    c: number,
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
    q: number,
    k: number,
    v: number,
    mask: number,
    out: number,
    lse: number,
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
    q: number,
    k: number,
    v: number,
    mask: number,
    out: number,
    lse: number,
    dout: number,
    dq: number,
    dk: number,
    dv: number,
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
  /** The instruction set in use and those this CPU runs, e.g. { kernel: 'avx512', available: 'avx512,avx2,scalar' }. */
  info(): { kernel: string; available: string };
  /** Picks the instruction set ('auto', 'avx512', 'avx2', 'scalar'; for tests); false when this CPU lacks it. */
  select(name: string): boolean;
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
      const { createRequire } = await import('node:module');
      const loadedAddon = createRequire(import.meta.url)(ADDON) as NativeAddon;
      // Without AVX2 or AVX-512 (or off x86-64) the addon has only portable C++, which the
      // WebAssembly SIMD kernels beat: keep those.
      if (loadedAddon.info().kernel === 'scalar') nativeLoadError = 'native addon has no SIMD kernels for this CPU';
      else addon = loadedAddon;
    } catch (e) {
      nativeLoadError = `native addon not loaded (${(e as Error).message.split('\n')[0]}); run \`npm run build:native\``;
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
export function nativeMatmul(rt: KernelRuntime, p: MatmulArgs): void {
  matmulWith(loaded('nativeMatmul'), rt, p, 0);
}

/**
 * The same with B stored as bfloat16 bits (2 bytes an element; strides still in elements): the
 * addon widens B exactly while packing it, so C is bit for bit nativeMatmul's on the widened B,
 * without a widened copy of B in memory.
 */
export function nativeMatmulBf16B(rt: KernelRuntime, p: MatmulArgs): void {
  matmulWith(loaded('nativeMatmulBf16B'), rt, p, 1);
}

function matmulWith(addon: NativeAddon, rt: KernelRuntime, p: MatmulArgs, bBf16: 0 | 1): void {
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
export function nativeAttention(rt: KernelRuntime, a: AttentionArgs): void {
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
export function nativeAttentionGrad(rt: KernelRuntime, a: AttentionGradArgs): void {
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
