// The WebGPU runtime under the backend: compiles kernels (WGSL with a generated header), records
// dispatches into one command encoder and submits lazily (on a read, or every `perSubmit`
// dispatches), passes each dispatch's parameters through one uniform buffer at dynamic offsets,
// stages small host writes in order with the recorded work, and reads back through pooled
// staging buffers. GPU errors cannot throw where they happen: they are recorded and thrown by the
// next read (or `sync`), naming the kernel where known.
import { BufferPool, USAGE } from './pool.js';

export type ParamType = 'u32' | 'i32' | 'f32' | 'u32x8';
export type Access = 'read' | 'read_write';

/** A kernel: its parameters (a uniform struct P), its storage buffers, and the WGSL body. */
export interface KernelDef {
  /** Unique per variant; names the kernel in errors. */
  name: string;
  params: readonly (readonly [string, ParamType])[];
  /** Storage bindings in order: variable name, element type (f32, i32, u32), access. */
  buffers: readonly (readonly [string, string, Access])[];
  /** WGSL after the generated header: helpers and `@compute fn main`. */
  body: string;
}

export interface Kernel {
  readonly def: KernelDef;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  readonly layoutId: number;
  /** Byte offset of each parameter in the uniform struct, in def.params order. */
  readonly offsets: readonly number[];
  readonly paramBytes: number;
  readonly writable: readonly boolean[];
}

export type ParamValue = number | readonly number[];

const MAP_READ = 0x1; // GPUMapMode.READ
const COMPUTE = 0x4; // GPUShaderStage.COMPUTE
const PARAM_ARENA = 1 << 20;
const UPLOAD_ARENA = 8 << 20;
const UPLOAD_SMALL = 1 << 20;

const PROFILE_QUERIES = 4096;

interface Profiler {
  queries: GPUQuerySet;
  /** Kernel names of the dispatches recorded since the last flush (query pairs 2i, 2i + 1). */
  names: string[];
  pending: Promise<void>[];
  totals: Map<string, { ns: number; count: number }>;
}

/** Adds the timestamps in `buf` (pairs per dispatch) to the totals by kernel name. */
async function collect(prof: Profiler, buf: GPUBuffer, names: string[]): Promise<void> {
  await buf.mapAsync(MAP_READ);
  const t = new BigUint64Array(buf.getMappedRange());
  names.forEach((name, i) => {
    const ns = t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) : 0;
    const e = prof.totals.get(name) ?? { ns: 0, count: 0 };
    e.ns += ns;
    e.count++;
    prof.totals.set(name, e);
  });
  buf.unmap();
  buf.destroy();
}

/** The uniform struct and bindings of a kernel. Arrays (u32x8) come first: they need 16-byte alignment. */
function header(def: KernelDef): { code: string; offsets: number[]; bytes: number } {
  const offsets: number[] = new Array(def.params.length);
  const lines: string[] = [];
  let at = 0;
  def.params.forEach(([name, t], i) => {
    if (t !== 'u32x8') return;
    offsets[i] = at;
    at += 32;
    lines.push(`  ${name}: array<vec4<u32>, 2>,`);
  });
  def.params.forEach(([name, t], i) => {
    if (t === 'u32x8') return;
    offsets[i] = at;
    at += 4;
    lines.push(`  ${name}: ${t},`);
  });
  if (lines.length === 0) lines.push('  unused: u32,');
  const bytes = Math.max(16, Math.ceil(at / 16) * 16);
  const binds = def.buffers.map(
    ([name, type, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${type}>;`,
  );
  const code = `struct Params {\n${lines.join('\n')}\n}\n@group(0) @binding(0) var<uniform> P: Params;\n${binds.join('\n')}\n`;
  return { code, offsets, bytes };
}

export interface RuntimeOptions {
  /** Dispatches recorded before a submit (default 256): the GPU starts while the host records on. */
  perSubmit?: number;
  /** One submit per dispatch with validation scopes, so that errors name their kernel. */
  debug?: boolean;
  /**
   * Idle pooled bytes kept for reuse (the largest idle buffers are destroyed first). Default: as
   * many as were ever in use at once (env TSDPO_WEBGPU_MAX_IDLE_MB sets a fixed number instead).
   */
  maxIdleBytes?: number;
  /**
   * Largest storage binding to use, below the device's maxStorageBufferBindingSize (tests force a
   * small one to exercise split tensors; env TSDPO_WEBGPU_MAX_BINDING, in bytes, does the same).
   */
  maxBinding?: number;
}

export class GpuRuntime {
  readonly limits: GPUSupportedLimits;
  /** Largest storage buffer a kernel may bind (min of the binding and buffer limits). */
  readonly maxBinding: number;
  readonly storage: BufferPool;
  private readonly staging: BufferPool;
  private readonly kernels = new Map<string, Kernel>();
  private readonly layouts = new Map<
    string,
    { layout: GPUBindGroupLayout; pipelineLayout: GPUPipelineLayout; id: number }
  >();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private recorded = 0;
  private readonly paramAlign: number;
  private readonly paramHost = new ArrayBuffer(PARAM_ARENA);
  private readonly paramU32 = new Uint32Array(this.paramHost);
  private readonly paramI32 = new Int32Array(this.paramHost);
  private readonly paramF32 = new Float32Array(this.paramHost);
  private paramUsed = 0;
  private readonly paramGpu: GPUBuffer;
  private readonly uploadHost = new Uint8Array(UPLOAD_ARENA);
  private uploadUsed = 0;
  private readonly uploadGpu: GPUBuffer;
  private readonly perSubmit: number;
  private readonly debug: boolean;

  /** First GPU error seen (validation, out of memory, device lost); thrown by check(). */
  private failure: string | null = null;
  private failureIsRoot = false;
  private lostMessage: string | null = null;
  /** Error scopes of new pipelines, awaited by reads so that a compile error is reported as such. */
  private compiling: Promise<void>[] = [];
  private readonly lost: Promise<never>;
  /** Per-kernel GPU time when profiling (timestamp queries around each dispatch). */
  private profiler: Profiler | null = null;
  /** Dispatches recorded and command buffers submitted since creation (for reports). */
  stats = { dispatches: 0, submits: 0, reads: 0, readBytes: 0 };

  constructor(
    readonly device: GPUDevice,
    readonly adapterName: string,
    opts: RuntimeOptions = {},
  ) {
    this.limits = device.limits;
    const envBinding = typeof process !== 'undefined' ? Number(process.env?.TSDPO_WEBGPU_MAX_BINDING ?? NaN) : NaN;
    const forced = opts.maxBinding ?? (Number.isFinite(envBinding) && envBinding > 0 ? envBinding : Infinity);
    this.maxBinding = Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize, forced);
    this.debug = opts.debug ?? false;
    this.perSubmit = this.debug ? 1 : Math.max(1, opts.perSubmit ?? 256);
    this.paramAlign = Math.max(16, this.limits.minUniformBufferOffsetAlignment);
    // Idle buffers are kept for the next step, which allocates the same sizes: creating a buffer of
    // a gigabyte (the logits of a batch) costs far more than the kernels that fill it.
    const envIdle = typeof process !== 'undefined' ? Number(process.env?.TSDPO_WEBGPU_MAX_IDLE_MB ?? NaN) : NaN;
    const maxIdle = opts.maxIdleBytes ?? (Number.isFinite(envIdle) ? envIdle * 2 ** 20 : null);
    // Large buffers are created inside an out-of-memory scope; a failure is thrown by the next read.
    const watch = (size: number, usage: number): GPUBuffer => {
      if (size < 64 << 20) return device.createBuffer({ size, usage });
      device.pushErrorScope('out-of-memory');
      const b = device.createBuffer({ size, usage });
      void device.popErrorScope().then((e) => {
        if (e)
          this.fail(
            `out of GPU memory creating a buffer of ${size} bytes (${e.message}); use smaller batches or --device cpu`,
          );
      });
      return b;
    };
    this.storage = new BufferPool(
      device,
      USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST,
      this.maxBinding,
      maxIdle,
      watch,
    );
    this.staging = new BufferPool(device, USAGE.MAP_READ | USAGE.COPY_DST, this.limits.maxBufferSize, 256 << 20);
    this.storage.pendingWork = this.staging.pendingWork = () => this.encoder !== null;
    this.paramGpu = device.createBuffer({ size: PARAM_ARENA, usage: USAGE.UNIFORM | USAGE.COPY_DST });
    this.uploadGpu = device.createBuffer({ size: UPLOAD_ARENA, usage: USAGE.COPY_SRC | USAGE.COPY_DST });
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => this.fail(`GPU error: ${ev.error.message}`);
    this.lost = device.lost.then((info) => {
      const msg = `the WebGPU device was lost (${info.reason}: ${info.message || 'no message'})`;
      if (info.reason !== 'destroyed') this.lostMessage = msg;
      throw new Error(`webgpu: ${msg}`);
    });
    this.lost.catch(() => {});
  }

  /** Records a GPU error; a kernel's compile error replaces the follow-up errors it causes. */
  private fail(message: string, root = false): void {
    if (this.failure === null || (root && !this.failureIsRoot)) {
      this.failure = message;
      this.failureIsRoot = root;
    }
  }

  /** Throws the first recorded GPU error (once; a lost device stays lost). */
  check(): void {
    const msg = this.lostMessage ?? this.failure;
    if (msg === null) return;
    this.failure = null;
    this.failureIsRoot = false;
    throw new Error(`webgpu: ${msg} (on ${this.adapterName})`);
  }

  // ---- kernels ------------------------------------------------------------------------------

  /** The compiled kernel for `key`, built from make() on first use. */
  kernel(key: string, make: () => KernelDef): Kernel {
    let k = this.kernels.get(key);
    if (!k) {
      k = this.compile(make());
      this.kernels.set(key, k);
    }
    return k;
  }

  /** Names of the kernels compiled so far (tests, profiles). */
  kernelNames(): string[] {
    return [...this.kernels.values()].map((k) => k.def.name);
  }

  private compile(def: KernelDef): Kernel {
    const h = header(def);
    const writable = def.buffers.map(([, , a]) => a === 'read_write');
    const sig = `${h.bytes}|${writable.map((w) => (w ? 'w' : 'r')).join('')}`;
    let lay = this.layouts.get(sig);
    if (!lay) {
      const entries: GPUBindGroupLayoutEntry[] = [
        {
          binding: 0,
          visibility: COMPUTE,
          buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: h.bytes },
        },
        ...writable.map((w, i): GPUBindGroupLayoutEntry => ({
          binding: i + 1,
          visibility: COMPUTE,
          buffer: { type: w ? 'storage' : 'read-only-storage' },
        })),
      ];
      const layout = this.device.createBindGroupLayout({ entries });
      lay = {
        layout,
        pipelineLayout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        id: this.layouts.size + 1,
      };
      this.layouts.set(sig, lay);
    }
    const code = h.code + def.body;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: def.name });
    const pipeline = this.device.createComputePipeline({
      layout: lay.pipelineLayout,
      compute: { module, entryPoint: 'main' },
      label: def.name,
    });
    this.compiling.push(
      this.device.popErrorScope().then(async (e) => {
        if (!e) return;
        const info = await module.getCompilationInfo();
        const msgs = info.messages.map((m) => `line ${m.lineNum}: ${m.message}`).join('; ');
        this.fail(`kernel ${def.name} does not compile: ${msgs || e.message}`, true);
      }),
    );
    return { def, pipeline, layout: lay.layout, layoutId: lay.id, offsets: h.offsets, paramBytes: h.bytes, writable };
  }

  private idOf(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(b, id);
    }
    return id;
  }

  private bindGroup(k: Kernel, bufs: readonly GPUBuffer[]): GPUBindGroup {
    let key = `${k.layoutId}`;
    for (const b of bufs) key += `,${this.idOf(b)}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      if (this.bindGroups.size > 50000) this.bindGroups.clear();
      bg = this.device.createBindGroup({
        layout: k.layout,
        entries: [
          { binding: 0, resource: { buffer: this.paramGpu, offset: 0, size: k.paramBytes } },
          ...bufs.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      this.bindGroups.set(key, bg);
    }
    return bg;
  }

  /** Forgets bind groups that name a destroyed buffer (all of them: destruction is rare). */
  forgetBindGroups(): void {
    this.bindGroups.clear();
  }

  /**
   * Records one dispatch of `k` over `groups` workgroups with storage buffers `bufs` (in
   * def.buffers order) and parameter values (def.params order; u32x8 as arrays of up to 8).
   */
  run(k: Kernel, bufs: GPUBuffer[], params: readonly ParamValue[], groups: readonly [number, number?, number?]): void {
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (gx > max || gy > max || gz > max) {
      throw new Error(`webgpu ${k.def.name}: grid ${gx} x ${gy} x ${gz} exceeds ${max} workgroups per dimension`);
    }
    this.check();
    if (this.paramUsed + this.paramAlign > PARAM_ARENA) this.flush();
    // A buffer bound for writing may not also be bound read-only: read a copy instead.
    let temps: GPUBuffer[] | null = null;
    for (let i = 0; i < bufs.length; i++) {
      if (k.writable[i]) continue;
      for (let j = 0; j < bufs.length; j++) {
        if (k.writable[j] && bufs[j] === bufs[i]) {
          const t = this.storage.acquire(bufs[i].size);
          this.copy(bufs[i], 0, t, 0, bufs[i].size);
          (temps ??= []).push(t);
          bufs = bufs.slice();
          bufs[i] = t;
          break;
        }
      }
    }
    const slot = this.paramUsed;
    this.writeParams(k, slot, params);
    this.paramUsed += Math.ceil(k.paramBytes / this.paramAlign) * this.paramAlign;
    if (this.debug) this.device.pushErrorScope('validation');
    const bg = this.bindGroup(k, bufs);
    const prof = this.profiler;
    if (prof && prof.names.length >= PROFILE_QUERIES / 2) this.flush();
    const pass = prof ? this.profiledPass(prof, k.def.name) : this.openPass();
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, bg, [slot]);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (prof) this.closePass();
    this.stats.dispatches++;
    if (temps) for (const t of temps) this.storage.release(t);
    if (++this.recorded >= this.perSubmit) this.flush();
    if (this.debug) {
      void this.device.popErrorScope().then((e) => {
        if (e) this.fail(`kernel ${k.def.name}: ${e.message}`);
      });
    }
  }

  private writeParams(k: Kernel, slot: number, params: readonly ParamValue[]): void {
    const types = k.def.params;
    if (params.length !== types.length)
      throw new Error(`webgpu ${k.def.name}: ${params.length} parameters, expected ${types.length}`);
    for (let i = 0; i < types.length; i++) {
      const w = (slot + k.offsets[i]) >> 2,
        v = params[i],
        t = types[i][1];
      if (t === 'u32x8') {
        const a = v as readonly number[];
        if (a.length > 8)
          throw new Error(`webgpu ${k.def.name}: ${types[i][0]} has ${a.length} values (at most 8 dims)`);
        for (let j = 0; j < 8; j++) this.paramU32[w + j] = j < a.length ? a[j] : 0;
      } else if (t === 'f32') this.paramF32[w] = v as number;
      else if (t === 'i32') this.paramI32[w] = v as number;
      else this.paramU32[w] = v as number;
    }
  }

  /** A pass of its own for one dispatch, with timestamps at its start and end. */
  private profiledPass(prof: Profiler, name: string): GPUComputePassEncoder {
    const enc = this.closePass();
    const i = prof.names.push(name) - 1;
    this.pass = enc.beginComputePass({
      timestampWrites: { querySet: prof.queries, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
    });
    return this.pass;
  }

  private openPass(): GPUComputePassEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    return this.pass;
  }

  private closePass(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  /** Records a buffer-to-buffer copy (byte offsets and size multiples of 4). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    this.closePass().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /**
   * Writes host bytes into `dst` at `offset`, in order with the recorded work: directly when
   * nothing is pending, else staged through the upload arena (or after a flush when large).
   */
  upload(dst: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.check();
    const bytes = data.byteLength;
    if (bytes === 0) return;
    // Views of shared memory (e.g. the CPU backend's heap) are copied: writeBuffer wants an ArrayBuffer.
    const src =
      data.buffer instanceof ArrayBuffer
        ? new Uint8Array(data.buffer, data.byteOffset, bytes)
        : new Uint8Array(new Uint8Array(data.buffer, data.byteOffset, bytes));
    if (this.encoder !== null && bytes <= UPLOAD_SMALL) {
      if (this.uploadUsed + bytes > UPLOAD_ARENA) this.flush();
    }
    if (this.encoder === null) {
      this.device.queue.writeBuffer(dst, offset, src);
      return;
    }
    if (bytes > UPLOAD_SMALL) {
      this.flush();
      this.device.queue.writeBuffer(dst, offset, src);
      return;
    }
    const at = this.uploadUsed;
    this.uploadHost.set(src, at);
    this.uploadUsed += Math.ceil(bytes / 16) * 16;
    this.copy(this.uploadGpu, at, dst, offset, bytes);
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (this.encoder === null) return;
    const enc = this.closePass();
    const q = this.device.queue;
    const prof = this.profiler;
    let resolved: { buf: GPUBuffer; names: string[]; res: GPUBuffer } | null = null;
    if (prof && prof.names.length > 0) {
      const n = 2 * prof.names.length;
      const res = this.device.createBuffer({ size: n * 8, usage: USAGE.COPY_SRC | 0x200 /* QUERY_RESOLVE */ });
      const read = this.device.createBuffer({ size: n * 8, usage: USAGE.MAP_READ | USAGE.COPY_DST });
      enc.resolveQuerySet(prof.queries, 0, n, res, 0);
      enc.copyBufferToBuffer(res, 0, read, 0, n * 8);
      resolved = { buf: read, names: prof.names, res };
      prof.names = [];
    }
    if (this.paramUsed > 0) q.writeBuffer(this.paramGpu, 0, this.paramHost, 0, this.paramUsed);
    if (this.uploadUsed > 0) q.writeBuffer(this.uploadGpu, 0, this.uploadHost, 0, this.uploadUsed);
    if (this.debug) this.device.pushErrorScope('validation');
    q.submit([enc.finish()]);
    if (this.debug)
      void this.device.popErrorScope().then((e) => {
        if (e) this.fail(`submit: ${e.message}`);
      });
    this.stats.submits++;
    if (prof && resolved) {
      resolved.res.destroy();
      prof.pending.push(collect(prof, resolved.buf, resolved.names));
    }
    this.encoder = null;
    this.paramUsed = 0;
    this.uploadUsed = 0;
    this.recorded = 0;
    // Buffers released while the work was recorded may be destroyed now (Dawn frees them once
    // the submitted work is done).
    if (this.storage.trimExcess() + this.staging.trimExcess() > 0) this.forgetBindGroups();
  }

  /** Copies `bytes` bytes at `offset` of `src` to the host (submits pending work first). */
  async read(src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.check();
    if (bytes === 0) return new ArrayBuffer(0);
    const staging = this.staging.acquire(bytes);
    this.copy(src, offset, staging, 0, bytes);
    this.flush();
    try {
      await Promise.race([staging.mapAsync(MAP_READ, 0, bytes), this.lost]);
    } catch (e) {
      await this.compiled();
      this.check();
      throw new Error(`webgpu: reading ${bytes} bytes back failed: ${(e as Error).message} (on ${this.adapterName})`);
    }
    const out = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    this.staging.release(staging);
    await this.compiled();
    this.stats.reads++;
    this.stats.readBytes += bytes;
    this.check();
    return out;
  }

  /**
   * Starts timing every dispatch on the GPU (needs the timestamp-query feature; one compute pass
   * per dispatch, so totals run a little slower). Returns false where timestamps are unavailable.
   */
  startProfile(): boolean {
    if (!this.device.features.has('timestamp-query')) return false;
    this.flush();
    this.profiler = {
      queries: this.device.createQuerySet({ type: 'timestamp', count: PROFILE_QUERIES }),
      names: [],
      pending: [],
      totals: new Map(),
    };
    return true;
  }

  /** Stops profiling; GPU milliseconds and dispatch counts per kernel name, largest first. */
  async stopProfile(): Promise<{ kernel: string; ms: number; count: number }[]> {
    const prof = this.profiler;
    if (!prof) return [];
    this.flush();
    this.profiler = null;
    await Promise.all(prof.pending);
    prof.queries.destroy();
    return [...prof.totals]
      .map(([kernel, t]) => ({ kernel, ms: t.ns / 1e6, count: t.count }))
      .sort((a, b) => b.ms - a.ms);
  }

  private async compiled(): Promise<void> {
    if (this.compiling.length === 0) return;
    const list = this.compiling;
    this.compiling = [];
    await Promise.all(list);
  }

  /** Waits until the GPU has finished all submitted work; throws recorded errors. */
  async sync(): Promise<void> {
    this.flush();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.lost]);
    await this.compiled();
    this.check();
  }

  destroy(): void {
    this.flush();
    this.storage.trim(0);
    this.staging.trim(0);
    this.bindGroups.clear();
    this.device.destroy();
  }
}
