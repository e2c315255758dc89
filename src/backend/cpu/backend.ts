// The CPU backend: tensors live in the shared WebAssembly memory of a KernelRuntime, and move out
// to host memory when it is full (pager.ts). float32 work runs the fast WebAssembly SIMD kernels on
// all threads; float64 (gradient checks) and any kernel without a fast version run the TypeScript
// reference kernels on views of that memory.
import type { Backend, Storage } from '../../core/backend.js';
import { BYTES, type DType, type TypedArray } from '../../core/dtype.js';
import type { KernelArgs, KernelTable } from '../../core/kernels.js';
import { bf16ToF32, f32ToBf16 } from '../../io/half.js';
import * as ref from '../ref/index.js';
import * as fast from './fast/index.js';
import {
  nativeAdamw,
  nativeAdd,
  nativeAffine,
  nativeAttention,
  nativeAttentionGrad,
  nativeEmbedding,
  nativeEmbeddingGrad,
  nativeMatmul,
  nativeMatmulBf16B,
  nativeSumsq,
  type Operand,
} from './native.js';
import { Pager, type PagedStorage } from './pager.js';
import type { KernelRuntime } from './runtime.js';

/**
 * A matmul's operands, each as `at` gives it (a byte offset into the backend's memory for the
 * WebAssembly kernels; for the native ones, possibly a spilled tensor's host bytes), flags as 0 / 1.
 */
function matmulOperands<P extends Operand>(a: KernelArgs['matmul'], at: (s: Storage) => P) {
  return {
    a: at(a.a),
    b: at(a.b),
    c: at(a.c),
    M: a.M,
    N: a.N,
    K: a.K,
    transA: a.transA ? (1 as const) : (0 as const),
    transB: a.transB ? (1 as const) : (0 as const),
    accumulate: a.accumulate ? (1 as const) : (0 as const),
    batch: a.batch,
    strideA: a.strideA,
    strideB: a.strideB,
    strideC: a.strideC,
  };
}

/** Attention's operands (the forward's; the backward adds dout, dq, dk, dv), each as `at` gives it; mask 0 for none. */
function attentionOperands<P extends Operand>(a: KernelArgs['attention'], at: (s: Storage) => P) {
  return {
    q: at(a.q),
    k: at(a.k),
    v: at(a.v),
    mask: a.mask === null ? 0 : at(a.mask),
    out: at(a.out),
    lse: at(a.lse),
    B: a.B,
    T: a.T,
    S: a.S,
    H: a.H,
    Hkv: a.Hkv,
    Dh: a.Dh,
    scale: a.scale,
    causal: a.causal,
    window: a.window,
    softcap: a.softcap,
  };
}

function attentionGradOperands<P extends Operand>(a: KernelArgs['attentionGrad'], at: (s: Storage) => P) {
  return { ...attentionOperands(a, at), dout: at(a.dout), dq: at(a.dq), dk: at(a.dk), dv: at(a.dv) };
}

/** Elements from which a dense sum runs in the native addon (below, the WebAssembly kernel's call is cheaper). */
const NATIVE_ADD_MIN = 1 << 16;

/**
 * A resident storage's byte address in the runtime memory (what a WebAssembly kernel reads). The
 * wrapper made every such kernel's operands resident (inPlace lists the kernels it does not);
 * a storage still outside means the two disagree: an error, not a read of address -1.
 */
const ptrOf = (s: Storage): number => {
  const ptr = (s as CpuStorage).ptr;
  if (ptr < 0) throw new Error('cpu backend: a WebAssembly kernel was handed a storage outside its memory (inPlace)');
  return ptr;
};

/** A CPU tensor's memory: `ptr` is its byte address in the runtime memory while resident (pager.ts). */
export type CpuStorage = PagedStorage;

export interface CpuOptions {
  /** Use the WebAssembly kernels for float32 (default true); false runs the references. */
  fast?: boolean;
  /** Run float32 matmul and attention in the native addon (native.ts; the caller loads it first). Default false. */
  native?: boolean;
}

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  readonly kernels: KernelTable;
  private live = 0;
  /** Highest liveBytes so far (reset with resetPeak). */
  peak = 0;

  resetPeak(): void {
    this.peak = this.live;
  }
  readonly useFast: boolean;
  readonly useNative: boolean;
  /** Moves tensors between the WebAssembly memory and host memory (pager.ts). */
  readonly pager: Pager;

  get spill(): Pager['stats'] {
    return this.pager.stats;
  }

  /** Where a native kernel finds a storage: its address while resident, else its host bytes (pager.ts). */
  private readonly operandOf = (s: Storage): Operand => {
    const c = s as CpuStorage;
    return c.ptr >= 0 ? c.ptr : this.pager.hostBytes(c);
  };

  /** Time and work per kernel when profiling (TSDPO_PROFILE=1 or profile()). */
  readonly profileData = new Map<string, { calls: number; ms: number; flops: number }>();

  constructor(
    readonly rt: KernelRuntime,
    opts: CpuOptions = {},
  ) {
    this.useFast = opts.fast ?? true;
    this.useNative = this.useFast && (opts.native ?? false);
    this.pager = new Pager(rt);
    const kernels = this.resident(this.makeKernels());
    this.kernels =
      typeof process !== 'undefined' && process.env?.TSDPO_PROFILE === '1' ? this.profiled(kernels) : kernels;
  }

  /**
   * Wraps every kernel so that its operands are resident in the WebAssembly memory while it runs,
   * except those that run in the native addon or on host views (inPlace): they take their operands
   * where they lie, so a tensor that only they touch (a weight, a gradient, an optimizer state)
   * never comes back into the WebAssembly memory once moved out.
   */
  private resident(k: KernelTable): KernelTable {
    const out: Record<string, (a: never) => void> = {};
    for (const [name, fn] of Object.entries(k) as [string, (a: Record<string, unknown>) => void][]) {
      out[name] = (a: never) => {
        const operands: CpuStorage[] = [];
        for (const v of Object.values(a as Record<string, unknown>))
          if (v !== null && typeof v === 'object' && (v as Storage).backend === this) operands.push(v as CpuStorage);
        if (this.inPlace(name as keyof KernelArgs, a)) this.pager.inPlace(operands, () => fn(a));
        else this.pager.pinned(operands, () => fn(a));
      };
    }
    return out as unknown as KernelTable;
  }

  /**
   * Whether a binary kernel is a large sum of dense float32 operands (a gradient added into a
   * leaf's: tied embeddings, shared weights), which the native addon does where they lie.
   */
  private nativeAdd(a: KernelArgs['binary']): boolean {
    if (!this.useNative || a.op !== 'add' || a.a.dtype !== 'f32' || a.b.dtype !== 'f32' || a.out.dtype !== 'f32')
      return false;
    let n = 1;
    for (let d = a.shape.length - 1; d >= 0; d--) {
      if (a.shape[d] !== 1 && (a.aStrides[d] !== n || a.bStrides[d] !== n)) return false;
      n *= a.shape[d];
    }
    return n >= NATIVE_ADD_MIN && n === a.out.size;
  }

  /** Whether kernel `name` will run on `a` where its operands lie (the branch makeKernels takes for it). */
  private inPlace(name: keyof KernelArgs, a: never): boolean {
    switch (name) {
      case 'fill':
        return (a as KernelArgs['fill']).out.dtype !== 'bf16';
      case 'matmul': {
        const m = a as KernelArgs['matmul'];
        return (
          this.useNative && (m.b.dtype === 'bf16' ? m.a.dtype === 'f32' && m.c.dtype === 'f32' : m.a.dtype !== 'f64')
        );
      }
      case 'attention':
      case 'attentionGrad':
        return this.useNative && (a as KernelArgs['attention']).q.dtype !== 'f64';
      case 'adamw':
        return this.useNative && (a as KernelArgs['adamw']).p.dtype !== 'f64';
      case 'binary':
        return this.nativeAdd(a);
      case 'sumSquares':
      case 'affine':
        return this.useNative && (a as KernelArgs['affine']).x.dtype !== 'f64';
      case 'embedding': {
        const e = a as KernelArgs['embedding'];
        return this.useNative && (e.weight.dtype === 'bf16' ? e.out.dtype === 'f32' : e.weight.dtype !== 'f64');
      }
      case 'embeddingGrad':
        return this.useNative && (a as KernelArgs['embeddingGrad']).dy.dtype !== 'f64';
      default:
        return false;
    }
  }

  /** Wraps every kernel to accumulate its wall time (and matmul / attention FLOPs). */
  private profiled(k: KernelTable): KernelTable {
    const out: Record<string, (a: never) => void> = {};
    for (const [name, fn] of Object.entries(k) as [string, (a: never) => void][]) {
      out[name] = (a: never) => {
        const t = performance.now();
        fn(a);
        const e = this.profileData.get(name) ?? { calls: 0, ms: 0, flops: 0 };
        e.calls++;
        e.ms += performance.now() - t;
        e.flops += flopsOf(name, a);
        this.profileData.set(name, e);
      };
    }
    return out as unknown as KernelTable;
  }

  supports(dtype: DType): boolean {
    return dtype === 'f32' || dtype === 'f64' || dtype === 'i32' || dtype === 'bf16';
  }

  alloc(dtype: DType, size: number): CpuStorage {
    const bytes = Math.max(1, size) * BYTES[dtype];
    const s: CpuStorage = {
      backend: this,
      dtype,
      size,
      refs: 0,
      ptr: -1,
      host: null,
      blank: false,
      bytes,
      lastUse: 0,
      pins: 0,
    };
    this.pager.place(s);
    this.live += bytes;
    if (this.live > this.peak) this.peak = this.live;
    return s;
  }

  free(s: Storage): void {
    this.pager.release(s as CpuStorage);
    this.live -= Math.max(1, s.size) * BYTES[s.dtype];
  }

  liveBytes(): number {
    return this.live;
  }

  /**
   * A view of the storage's elements in the shared memory, valid until a kernel or an allocation
   * may move tensors (inside a kernel, its operands stay put). A spilled storage is loaded first.
   */
  view(s: Storage, start = 0, end = s.size): TypedArray {
    this.pager.ensure(s as CpuStorage);
    const h = this.rt.heap(),
      p = (s as CpuStorage).ptr;
    switch (s.dtype) {
      case 'f32':
        return h.f32.subarray(p / 4 + start, p / 4 + end);
      case 'f64':
        return h.f64.subarray(p / 8 + start, p / 8 + end);
      case 'i32':
        return h.i32.subarray(p / 4 + start, p / 4 + end);
      case 'bf16':
        throw new Error(
          `cpu backend: a bf16 storage of ${s.size} elements has no f32 view (frozen weights are read by matmul and embedding only)`,
        );
    }
  }

  /** The 16-bit patterns of a bf16 storage (valid as long as a view()). */
  bits(s: Storage, start = 0, end = s.size): Uint16Array {
    this.pager.ensure(s as CpuStorage);
    const p = (s as CpuStorage).ptr / 2;
    return new Uint16Array(this.rt.memory.buffer, 2 * (p + start), end - start);
  }

  /**
   * Elements [start, end) of a storage outside the WebAssembly memory, where it lies (host memory; a
   * blank one gets its host bytes now), or null when resident.
   */
  private hostView(s: Storage, start = 0, end = s.size): Float32Array | Float64Array | Int32Array | Uint16Array | null {
    if ((s as CpuStorage).ptr >= 0) return null;
    const host = this.pager.hostBytes(s as CpuStorage);
    const at = host.byteOffset + start * BYTES[s.dtype],
      n = end - start;
    switch (s.dtype) {
      case 'f32':
        return new Float32Array(host.buffer, at, n);
      case 'f64':
        return new Float64Array(host.buffer, at, n);
      case 'i32':
        return new Int32Array(host.buffer, at, n);
      case 'bf16':
        return new Uint16Array(host.buffer, at, n);
    }
  }

  /** Copies values in; a bf16 storage takes bf16 bit patterns (a Uint16Array) or numbers, rounded to nearest even. */
  write(s: Storage, data: ArrayLike<number>, offset = 0): void {
    if (offset + data.length > s.size)
      throw new Error(`cpu write: ${data.length} values at offset ${offset} exceed ${s.size} elements`);
    const spilled = this.hostView(s);
    if (spilled !== null) {
      // A spilled storage is written where it lies, without moving others out.
      spilled.set(
        s.dtype === 'bf16' && !(data instanceof Uint16Array) ? f32ToBf16(Float32Array.from(data)) : data,
        offset,
      );
    } else if (s.dtype === 'bf16')
      this.bits(s).set(data instanceof Uint16Array ? data : f32ToBf16(Float32Array.from(data)), offset);
    else this.view(s).set(data, offset);
  }

  readSync(s: Storage, start = 0, end = s.size): TypedArray {
    const spilled = this.hostView(s, start, end);
    if (spilled !== null) return spilled instanceof Uint16Array ? bf16ToF32(spilled) : spilled.slice();
    if (s.dtype === 'bf16') return bf16ToF32(this.bits(s, start, end));
    return this.view(s, start, end).slice();
  }

  peekSync(s: Storage): TypedArray {
    const spilled = this.hostView(s);
    if (spilled === null) return s.dtype === 'bf16' ? bf16ToF32(this.bits(s)) : this.view(s);
    return spilled instanceof Uint16Array ? bf16ToF32(spilled) : spilled;
  }

  async read(s: Storage, start = 0, end = s.size): Promise<TypedArray> {
    return this.readSync(s, start, end);
  }

  /** True when every float operand is f32 and the fast kernels are on. */
  private fastFor(...xs: (Storage | null)[]): boolean {
    return this.useFast && xs.every((x) => x === null || x.dtype !== 'f64');
  }

  /** Runs a fast kernel; when it reports a bad index, the reference check names the id and position. */
  private explained(run: () => void, check: () => void): void {
    try {
      run();
    } catch (e) {
      if (/index out of range|is outside \[0, V/.test((e as Error).message)) check();
      throw e;
    }
  }

  /** C (+)= op(A) op(B) with B a bf16 frozen weight, A and C f32: f32 accumulation over B widened exactly. */
  private matmulBf16(a: KernelArgs['matmul']): void {
    if (a.a.dtype !== 'f32' || a.c.dtype !== 'f32')
      throw new Error(`cpu matmul: a bf16 weight multiplies f32 operands only, got ${a.a.dtype}`);
    if (this.useFast) {
      if (this.useNative) nativeMatmulBf16B(this.rt, matmulOperands(a, this.operandOf));
      else fast.matmulBf16B(this.rt, matmulOperands(a, ptrOf));
    } else {
      this.refMatmul(a, bf16ToF32(this.bits(a.b)));
    }
  }

  /** The reference matmul (float64 checks, fast kernels off) with B's values given (a bf16 B widened). */
  private refMatmul(a: KernelArgs['matmul'], b: TypedArray): void {
    const lda = a.transA ? a.M : a.K,
      ldb = a.transB ? a.K : a.N;
    ref.matmul(
      this.view(a.a) as Float32Array | Float64Array,
      b as Float32Array | Float64Array,
      this.view(a.c) as Float32Array | Float64Array,
      a.M,
      a.N,
      a.K,
      lda,
      ldb,
      a.N,
      a.transA ? 1 : 0,
      a.transB ? 1 : 0,
      a.accumulate ? 1 : 0,
      a.batch,
      a.strideA,
      a.strideB,
      a.strideC,
    );
  }

  /** Rows of a bf16 embedding table, widened to the f32 output. */
  private embeddingBf16(a: KernelArgs['embedding']): void {
    if (a.out.dtype !== 'f32') throw new Error(`cpu embedding: a bf16 table gathers into f32, got ${a.out.dtype}`);
    if (this.useFast) {
      this.explained(
        () =>
          this.useNative
            ? nativeEmbedding(
                this.rt,
                this.operandOf(a.weight),
                this.operandOf(a.ids),
                this.operandOf(a.out),
                a.N,
                a.D,
                a.V,
                1,
              )
            : fast.embeddingBf16(this.rt, ptrOf(a.weight), ptrOf(a.ids), ptrOf(a.out), a.N, a.D, a.V),
        () => ref.checkIds('embedding', this.view(a.ids) as Int32Array, a.N, a.V),
      );
    } else {
      const ids = this.view(a.ids) as Int32Array,
        w = this.bits(a.weight),
        out = this.view(a.out);
      ref.checkIds('embedding', ids, a.N, a.V);
      for (let r = 0; r < a.N; r++) out.set(bf16ToF32(w.subarray(ids[r] * a.D, (ids[r] + 1) * a.D)), r * a.D);
    }
  }

  private makeKernels(): KernelTable {
    const rt = this.rt;
    const v = (s: Storage): any => this.view(s); // eslint-disable-line @typescript-eslint/no-explicit-any
    const vo = (s: Storage | null): any => (s === null ? null : this.view(s)); // eslint-disable-line @typescript-eslint/no-explicit-any
    const p = ptrOf;
    const o = this.operandOf;
    const po = (s: Storage | null): number => (s === null ? 0 : ptrOf(s));
    type K<N extends keyof KernelArgs> = (a: KernelArgs[N]) => void;

    const fill: K<'fill'> = (a) => {
      (this.hostView(a.out) ?? this.view(a.out)).fill(a.value);
    };
    const copy: K<'copy'> = (a) => {
      const meta = [...a.shape, ...a.srcStrides, ...a.dstStrides];
      const eb = BYTES[a.src.dtype];
      if (a.src.dtype === 'bf16' || a.dst.dtype === 'bf16') {
        if (a.src.dtype !== a.dst.dtype) throw new Error(`cpu copy: ${a.src.dtype} -> ${a.dst.dtype} (use cast)`);
        ref.copyStrided(this.bits(a.src, a.srcOffset), this.bits(a.dst, a.dstOffset), a.shape.length, meta, 2);
      } else if (this.useFast && eb === 4 && a.dst.dtype === a.src.dtype) {
        fast.copyStrided(rt, p(a.src) + a.srcOffset * 4, p(a.dst) + a.dstOffset * 4, a.shape.length, meta, 4);
      } else {
        ref.copyStrided(this.view(a.src, a.srcOffset), this.view(a.dst, a.dstOffset), a.shape.length, meta, eb);
      }
    };
    const cast: K<'cast'> = (a) => {
      const from = a.src.dtype,
        to = a.dst.dtype;
      if (from === 'bf16' || to === 'bf16') {
        const wide =
          from === 'bf16' ? bf16ToF32(this.bits(a.src, 0, a.n)) : Float32Array.from(this.view(a.src, 0, a.n));
        if (to === 'bf16') this.bits(a.dst).set(f32ToBf16(wide));
        else if (to === 'i32') ref.cast(wide, v(a.dst), a.n, 1);
        else v(a.dst).set(wide);
      } else if (from !== 'i32' && to !== 'i32') v(a.dst).set(this.view(a.src, 0, a.n));
      else if (this.fastFor(a.src, a.dst) && from !== to)
        fast.cast(rt, p(a.src), p(a.dst), a.n, from === 'i32' ? 0 : 1);
      else ref.cast(v(a.src), v(a.dst), a.n, from === 'i32' ? 0 : 1);
    };
    return {
      fill,
      copy,
      cast,
      unary: (a) =>
        this.fastFor(a.x) ? fast.unary(rt, a.op, p(a.x), p(a.out), a.n) : ref.unary(a.op, v(a.x), v(a.out), a.n),
      unaryGrad: (a) =>
        this.fastFor(a.x)
          ? fast.unaryGrad(rt, a.op, p(a.x), p(a.dy), p(a.dx), a.n)
          : ref.unaryGrad(a.op, v(a.x), v(a.dy), v(a.dx), a.n),
      binary: (a) =>
        this.nativeAdd(a)
          ? nativeAdd(rt, o(a.a), o(a.b), o(a.out), a.out.size)
          : this.fastFor(a.a)
            ? fast.binary(rt, a.op, p(a.a), p(a.b), p(a.out), a.shape.length, [
                ...a.shape,
                ...a.aStrides,
                ...a.bStrides,
              ])
            : ref.binary(a.op, v(a.a), v(a.b), v(a.out), a.shape.length, [...a.shape, ...a.aStrides, ...a.bStrides]),
      where: (a) =>
        this.fastFor(a.a, a.cond)
          ? fast.where(rt, p(a.cond), p(a.a), p(a.b), p(a.out), a.shape.length, [
              ...a.shape,
              ...a.condStrides,
              ...a.aStrides,
              ...a.bStrides,
            ])
          : ref.where(v(a.cond), v(a.a), v(a.b), v(a.out), a.shape.length, [
              ...a.shape,
              ...a.condStrides,
              ...a.aStrides,
              ...a.bStrides,
            ]),
      affine: (a) =>
        !this.fastFor(a.x)
          ? ref.affine(v(a.x), v(a.out), a.scale, a.shift, a.n)
          : this.useNative
            ? nativeAffine(rt, o(a.x), o(a.out), a.scale, a.shift, a.n)
            : fast.affine(rt, p(a.x), p(a.out), a.scale, a.shift, a.n),
      reduce: (a) =>
        this.fastFor(a.x)
          ? fast.reduce(rt, a.op, p(a.x), p(a.out), a.outer, a.red, a.inner)
          : ref.reduce(a.op, v(a.x), v(a.out), a.outer, a.red, a.inner),
      matmul: (a) => {
        if (a.b.dtype === 'bf16') {
          this.matmulBf16(a);
        } else if (this.fastFor(a.a)) {
          if (this.useNative) nativeMatmul(rt, matmulOperands(a, this.operandOf));
          else fast.matmulF32(rt, matmulOperands(a, ptrOf));
        } else {
          this.refMatmul(a, this.view(a.b));
        }
      },
      softmax: (a) => {
        if (this.fastFor(a.x)) (a.log ? fast.logSoftmax : fast.softmax)(rt, p(a.x), p(a.out), a.N, a.D);
        else (a.log ? ref.logSoftmax : ref.softmax)(v(a.x), v(a.out), a.N, a.D);
      },
      softmaxGrad: (a) => {
        if (this.fastFor(a.y)) (a.log ? fast.logSoftmaxGrad : fast.softmaxGrad)(rt, p(a.y), p(a.dy), p(a.dx), a.N, a.D);
        else (a.log ? ref.logSoftmaxGrad : ref.softmaxGrad)(v(a.y), v(a.dy), v(a.dx), a.N, a.D);
      },
      logSoftmaxGather: (a) =>
        this.fastFor(a.logits)
          ? this.explained(
              () => fast.logsoftmaxGather(rt, p(a.logits), p(a.targets), p(a.out), a.N, a.V),
              () => ref.checkTargets('logSoftmaxGather', v(a.targets), a.N, a.V),
            )
          : ref.logsoftmaxGather(v(a.logits), v(a.targets), v(a.out), a.N, a.V),
      logSoftmaxGatherGrad: (a) =>
        this.fastFor(a.logits)
          ? fast.logsoftmaxGatherGrad(rt, p(a.logits), p(a.targets), p(a.dy), p(a.dlogits), a.N, a.V)
          : ref.logsoftmaxGatherGrad(v(a.logits), v(a.targets), v(a.dy), v(a.dlogits), a.N, a.V),
      embedding: (a) =>
        a.weight.dtype === 'bf16'
          ? this.embeddingBf16(a)
          : this.fastFor(a.weight)
            ? this.explained(
                () =>
                  this.useNative
                    ? nativeEmbedding(rt, o(a.weight), o(a.ids), o(a.out), a.N, a.D, a.V, 0)
                    : fast.embedding(rt, p(a.weight), p(a.ids), p(a.out), a.N, a.D, a.V),
                () => ref.checkIds('embedding', v(a.ids), a.N, a.V),
              )
            : ref.embedding(v(a.weight), v(a.ids), v(a.out), a.N, a.D, a.V),
      embeddingGrad: (a) =>
        !this.fastFor(a.dy)
          ? ref.embeddingGrad(v(a.dy), v(a.ids), v(a.dweight), a.N, a.D, a.V)
          : this.useNative
            ? this.explained(
                () => nativeEmbeddingGrad(rt, o(a.dy), o(a.ids), o(a.dweight), a.N, a.D, a.V),
                () => ref.checkIds('embeddingGrad', v(a.ids), a.N, a.V),
              )
            : fast.embeddingGrad(rt, p(a.dy), p(a.ids), p(a.dweight), a.N, a.D, a.V),
      layerNorm: (a) =>
        this.fastFor(a.x)
          ? fast.layernorm(rt, p(a.x), po(a.w), po(a.b), p(a.out), p(a.mean), p(a.rstd), a.N, a.D, a.eps)
          : ref.layernorm(v(a.x), vo(a.w), vo(a.b), v(a.out), v(a.mean), v(a.rstd), a.N, a.D, a.eps),
      layerNormGrad: (a) =>
        this.fastFor(a.x)
          ? fast.layernormGrad(rt, p(a.x), po(a.w), p(a.mean), p(a.rstd), p(a.dy), p(a.dx), a.N, a.D)
          : ref.layernormGrad(v(a.x), vo(a.w), v(a.mean), v(a.rstd), v(a.dy), v(a.dx), a.N, a.D),
      layerNormWGrad: (a) =>
        this.fastFor(a.x)
          ? fast.layernormWgrad(rt, p(a.x), p(a.mean), p(a.rstd), p(a.dy), po(a.dw), po(a.db), a.N, a.D)
          : ref.layernormWgrad(v(a.x), v(a.mean), v(a.rstd), v(a.dy), vo(a.dw), vo(a.db), a.N, a.D),
      rmsNorm: (a) =>
        this.fastFor(a.x)
          ? fast.rmsnorm(rt, p(a.x), po(a.w), p(a.out), p(a.rstd), a.N, a.D, a.eps, a.offset)
          : ref.rmsnorm(v(a.x), vo(a.w), v(a.out), v(a.rstd), a.N, a.D, a.eps, a.offset),
      rmsNormGrad: (a) =>
        this.fastFor(a.x)
          ? fast.rmsnormGrad(rt, p(a.x), po(a.w), p(a.rstd), p(a.dy), p(a.dx), a.N, a.D, a.offset)
          : ref.rmsnormGrad(v(a.x), vo(a.w), v(a.rstd), v(a.dy), v(a.dx), a.N, a.D, a.offset),
      rmsNormWGrad: (a) =>
        this.fastFor(a.x)
          ? fast.rmsnormWgrad(rt, p(a.x), p(a.rstd), p(a.dy), p(a.dw), a.N, a.D)
          : ref.rmsnormWgrad(v(a.x), v(a.rstd), v(a.dy), v(a.dw), a.N, a.D),
      rope: (a) =>
        this.fastFor(a.x)
          ? fast.rope(rt, p(a.x), p(a.cos), p(a.sin), p(a.out), a.B, a.T, a.H, a.Dh, a.R, a.sign as 1 | -1)
          : ref.rope(v(a.x), v(a.cos), v(a.sin), v(a.out), a.B, a.T, a.H, a.Dh, a.R, a.sign),
      attention: (a) => {
        if (this.fastFor(a.q)) {
          if (this.useNative) nativeAttention(rt, attentionOperands(a, this.operandOf));
          else fast.attentionF32(rt, attentionOperands(a, ptrOf));
        } else {
          ref.attention(
            v(a.q),
            v(a.k),
            v(a.v),
            vo(a.mask),
            v(a.out),
            v(a.lse),
            a.B,
            a.T,
            a.S,
            a.H,
            a.Hkv,
            a.Dh,
            a.scale,
            a.causal,
            a.window,
            a.softcap,
          );
        }
      },
      attentionGrad: (a) => {
        if (this.fastFor(a.q)) {
          if (this.useNative) nativeAttentionGrad(rt, attentionGradOperands(a, this.operandOf));
          else fast.attentionGradF32(rt, attentionGradOperands(a, ptrOf));
        } else {
          ref.attentionGrad(
            v(a.q),
            v(a.k),
            v(a.v),
            vo(a.mask),
            v(a.out),
            v(a.lse),
            v(a.dout),
            v(a.dq),
            v(a.dk),
            v(a.dv),
            a.B,
            a.T,
            a.S,
            a.H,
            a.Hkv,
            a.Dh,
            a.scale,
            a.causal,
            a.window,
            a.softcap,
          );
        }
      },
      adamw: (a) => {
        const args = [a.n, a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.bc1, a.bc2] as const;
        if (!this.fastFor(a.p)) ref.adamw(v(a.p), v(a.g), v(a.m), v(a.v), ...args);
        else if (this.useNative) nativeAdamw(rt, o(a.p), o(a.g), o(a.m), o(a.v), ...args);
        else fast.adamw(rt, p(a.p), p(a.g), p(a.m), p(a.v), ...args);
      },
      rmsprop: (a) =>
        this.fastFor(a.p)
          ? fast.rmsprop(rt, p(a.p), p(a.g), p(a.sq), a.n, a.lr, a.alpha, a.eps, a.weightDecay)
          : ref.rmsprop(v(a.p), v(a.g), v(a.sq), a.n, a.lr, a.alpha, a.eps, a.weightDecay),
      sgd: (a) =>
        this.fastFor(a.p)
          ? fast.sgd(rt, p(a.p), p(a.g), po(a.buf), a.n, a.lr, a.momentum, a.weightDecay)
          : ref.sgd(v(a.p), v(a.g), vo(a.buf), a.n, a.lr, a.momentum, a.weightDecay),
      sumSquares: (a) => {
        // Float64 partials per chunk, summed here.
        const chunks = fast.sumsqChunks(a.n);
        let total = 0;
        if (this.fastFor(a.x) && this.useNative) {
          total = nativeSumsq(rt, o(a.x), a.n);
        } else if (this.fastFor(a.x)) {
          const at = rt.malloc(chunks * 8);
          fast.sumsq(rt, p(a.x), a.n, at);
          const parts = rt.heap().f64.subarray(at / 8, at / 8 + chunks);
          for (const x of parts) total += x;
          rt.free(at);
        } else {
          const parts = new Float64Array(chunks);
          ref.sumsq(v(a.x), a.n, parts);
          for (const x of parts) total += x;
        }
        this.view(a.out)[a.index] += total;
      },
      dropoutMask: (a) =>
        this.fastFor(a.out)
          ? fast.dropoutMask(rt, p(a.out), a.n, a.p, a.seed)
          : ref.dropoutMask(v(a.out), a.n, a.p, a.seed),
    };
  }
}

/** Multiply-add work of the compute-bound kernels (2 FLOPs per multiply-add). */
function flopsOf(name: string, a: Record<string, number>): number {
  if (name === 'matmul') return 2 * a.M * a.N * a.K * a.batch;
  if (name === 'attention') return 4 * a.B * a.H * a.T * a.S * a.Dh;
  if (name === 'attentionGrad') return 10 * a.B * a.H * a.T * a.S * a.Dh;
  return 0;
}
