// The WebGPU backend: tensors live in GPU buffers from a size-class pool, kernels are WGSL
// compute shaders (kernels/*.ts, one file per group), reads are asynchronous. float32 and int32
// only: supports('f64') is false, so float64 work (gradient checks) stays on the CPU backend.
import type { Backend, Storage } from '../../core/backend.js';
import { BYTES, type DType, type TypedArray } from '../../core/dtype.js';
import { bf16ToF32, f32ToBf16 } from '../../io/half.js';
import type { KernelTable } from '../../core/kernels.js';
import { acquireGpu, type GpuOptions } from './gpu.js';
import { GpuRuntime, type RuntimeOptions } from './runtime.js';
import { idInfoOf, mergeIds, type GpuStorage } from './storage.js';
import { USAGE } from './pool.js';
import type { Ctx } from './kernels/context.js';
import { makeKernels } from './kernels/index.js';
import { pagedKernels, pageLayout } from './paged.js';

export type WebGpuOptions = GpuOptions & RuntimeOptions;

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly kernels: KernelTable;
  private live = 0;
  /** Highest liveBytes so far (reset with resetPeak). */
  peak = 0;

  resetPeak(): void {
    this.peak = this.live;
  }

  /** Opens the best adapter's device; throws with the reason when there is none. */
  static async create(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
    const got = await acquireGpu(opts);
    if (!got.ok) throw new Error(`webgpu: ${got.reason}`);
    const env = typeof process !== 'undefined' ? process.env : undefined;
    const debug = opts.debug ?? env?.TSDPO_WEBGPU_DEBUG === '1';
    return new WebGpuBackend(new GpuRuntime(got.gpu.device, got.gpu.name, { ...opts, debug }), got.gpu.fallback);
  }

  constructor(
    readonly rt: GpuRuntime,
    readonly fallbackAdapter = false,
  ) {
    const small = (): GPUBuffer =>
      rt.device.createBuffer({ size: 16, usage: USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC });
    const ctx: Ctx = { rt, dummy: small(), sink: small() };
    this.kernels = pagedKernels(ctx, makeKernels(ctx));
  }

  /** The adapter, e.g. "nvidia-h200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  get adapter(): string {
    return this.rt.adapterName;
  }

  supports(dtype: DType): boolean {
    return dtype === 'f32' || dtype === 'i32' || dtype === 'bf16';
  }

  /** Largest tensor a kernel binds whole; larger ones are split by rows (paged.ts). */
  get bindingLimit(): number {
    return this.rt.maxBinding;
  }

  alloc(dtype: DType, size: number, shape?: readonly number[]): GpuStorage {
    if (!this.supports(dtype))
      throw new Error(
        `webgpu: ${dtype} tensors are not supported on WebGPU (float32, int32 and bfloat16 frozen weights; use the cpu device for float64)`,
      );
    const bytes = bytesOf(dtype, Math.max(1, size));
    if (bytes > this.rt.maxBinding) {
      const { pageElems, rowElems, count } = pageLayout(
        'webgpu',
        dtype,
        size,
        shape,
        this.rt.maxBinding,
        this.rt.adapterName,
      );
      const buffers = Array.from({ length: count }, (_, i) =>
        this.rt.storage.acquire(bytesOf(dtype, Math.min(pageElems, size - i * pageElems))),
      );
      for (const b of buffers) this.live += b.size;
      if (this.live > this.peak) this.peak = this.live;
      return { backend: this, dtype, size, refs: 0, buffer: buffers[0], pages: { buffers, pageElems, rowElems } };
    }
    const buffer = this.rt.storage.acquire(bytes);
    this.live += buffer.size;
    if (this.live > this.peak) this.peak = this.live;
    return { backend: this, dtype, size, refs: 0, buffer };
  }

  free(s: Storage): void {
    const g = s as GpuStorage;
    for (const b of g.pages?.buffers ?? [g.buffer]) {
      this.live -= b.size;
      this.rt.storage.release(b);
    }
  }

  liveBytes(): number {
    return this.live;
  }

  write(s: Storage, data: ArrayLike<number>, offset = 0): void {
    if (offset + data.length > s.size)
      throw new Error(`webgpu write: ${data.length} values at offset ${offset} exceed ${s.size} elements`);
    const g = s as GpuStorage;
    let arr: Float32Array | Int32Array;
    if (s.dtype === 'i32') {
      arr = data instanceof Int32Array ? data : Int32Array.from(data);
      const whole = offset === 0 && data.length === s.size;
      const info = idInfoOf(arr, whole);
      g.ids = whole ? info : mergeIds(g.ids, info);
    } else if (s.dtype === 'bf16') {
      // bf16 bit patterns as given, or values rounded to nearest even; two per u32 (low half first).
      const bits =
        data instanceof Uint16Array ? data : f32ToBf16(data instanceof Float32Array ? data : Float32Array.from(data));
      if (offset % 2 !== 0 || (bits.length % 2 !== 0 && offset + bits.length !== s.size)) {
        throw new Error(
          `webgpu write: bfloat16 values are written in pairs (offset ${offset} and ${bits.length} values into ${s.size})`,
        );
      }
      this.upload(g, offset, bits.length % 2 ? Uint16Array.from([...bits, 0]) : bits, 2);
      return;
    } else {
      arr = data instanceof Float32Array ? data : Float32Array.from(data);
    }
    this.upload(g, offset, arr, 4);
  }

  /** Uploads elements [offset, offset + n) of `arr` (bytes per element `eb`) into the storage's pages. */
  private upload(g: GpuStorage, offset: number, arr: Float32Array | Int32Array | Uint16Array, eb: number): void {
    const pageElems = g.pages?.pageElems ?? g.size,
      buffers = g.pages?.buffers ?? [g.buffer];
    for (let i = 0; i < buffers.length; i++) {
      const p0 = i * pageElems,
        p1 = p0 + pageElems;
      const from = Math.max(offset, p0),
        to = Math.min(offset + arr.length, p1);
      if (from < to) this.rt.upload(buffers[i], (from - p0) * eb, arr.subarray(from - offset, to - offset));
    }
  }

  async read(s: Storage, start = 0, end = s.size): Promise<TypedArray> {
    if (start < 0 || end > s.size || start > end)
      throw new Error(`webgpu read: range [${start}, ${end}) of ${s.size} elements`);
    const g = s as GpuStorage;
    if (g.pages || s.dtype === 'bf16') {
      // Page by page; bf16 reads whole u32 words and widens the values asked for.
      const out = new Float32Array(end - start);
      const pageElems = g.pages?.pageElems ?? s.size,
        buffers = g.pages?.buffers ?? [g.buffer];
      for (let i = 0; i < buffers.length; i++) {
        const p0 = i * pageElems,
          from = Math.max(start, p0),
          to = Math.min(end, p0 + pageElems);
        if (from >= to) continue;
        if (s.dtype === 'bf16') {
          const w0 = (from - p0) >> 1,
            w1 = (to - p0 + 1) >> 1;
          const bits = new Uint16Array(await this.rt.read(buffers[i], w0 * 4, (w1 - w0) * 4));
          out.set(bf16ToF32(bits.subarray(from - p0 - 2 * w0, to - p0 - 2 * w0)), from - start);
        } else {
          out.set(new Float32Array(await this.rt.read(buffers[i], (from - p0) * 4, (to - from) * 4)), from - start);
        }
      }
      return out;
    }
    const bytes = await this.rt.read((s as GpuStorage).buffer, start * 4, (end - start) * 4);
    return s.dtype === 'i32' ? new Int32Array(bytes) : new Float32Array(bytes);
  }

  /** Submits recorded work and waits for the GPU (benchmarks; reads do this themselves). */
  sync(): Promise<void> {
    return this.rt.sync();
  }

  /** Releases the device; the backend is unusable afterwards. */
  destroy(): void {
    this.rt.destroy();
  }
}

/** Bytes of n elements as stored: bf16 packs two per u32. */
function bytesOf(dtype: DType, n: number): number {
  return dtype === 'bf16' ? 4 * Math.ceil(n / 2) : n * BYTES[dtype];
}
