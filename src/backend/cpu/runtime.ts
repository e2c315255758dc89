// The WebAssembly side of the CPU backend: one shared memory that holds every CPU tensor, an
// allocator over it, the compiled kernels, and a pool of threads that run a kernel over slices
// of its work. Node uses worker_threads, browsers Web Workers (platform.ts hides which).
//
// Threading protocol (all through Int32Array views of the shared memory, no messages per job):
// the caller writes a job (kernel index, argument list, work size) into the control block, bumps
// the generation word and wakes the workers; every participant runs its contiguous slice of
// [0, n) and increments `done`; the caller computes slice 0 itself, then waits for `done`.
import { loadPlatform, type Platform, type WorkerHandle } from './platform.js';

/** Bytes of scratch memory each thread may use inside a kernel (passed as the last argument). */
export const SCRATCH_BYTES = 4 << 20;
/** The module's static data and the control block live below this address. */
const HEAP_BASE = 1 << 20;
const PAGE = 65536;
const MAX_PAGES = 65536; // wasm32: 4 GiB
const MAX_ARGS = 40;
// Control block layout (int32 words) at CTRL; the float64 argument list follows at CTRL + 64.
const CTRL = 512 * 1024;
const W_GEN = 0,
  W_DONE = 1,
  W_KERNEL = 2,
  W_N = 3,
  W_THREADS = 4,
  W_ARGC = 5,
  W_ERROR = 6,
  W_GRAIN = 7;
const W_SCRATCH = 8,
  W_QUIT = 9;
// Small integer arrays for kernels (shapes, strides): see KernelRuntime.meta.
const META = CTRL + 1024,
  META_WORDS = 4096;

export type KernelFn = (...args: number[]) => number;

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  names: string[];
  tid: number;
  relaxed: boolean;
}

/** Splits [0, n) into `parts` contiguous slices aligned to `grain`; returns slice `i`. */
export function sliceOf(n: number, parts: number, i: number, grain: number): [number, number] {
  const units = Math.ceil(n / grain);
  const per = Math.floor(units / parts),
    extra = units % parts;
  const lo = i * per + Math.min(i, extra),
    hi = lo + per + (i < extra ? 1 : 0);
  return [Math.min(n, lo * grain), Math.min(n, hi * grain)];
}

/**
 * Runs the job described in the control block for thread `tid`. Shared by the caller and the
 * workers so that both read the same arguments the same way.
 */
export function runSlice(ctrl: Int32Array, args: Float64Array, kernels: KernelFn[], tid: number): void {
  const threads = ctrl[W_THREADS],
    n = ctrl[W_N],
    grain = ctrl[W_GRAIN];
  const [start, end] = sliceOf(n, threads, tid, grain);
  if (start >= end) return;
  const argc = ctrl[W_ARGC];
  const list = new Array<number>(argc + 3);
  for (let i = 0; i < argc; i++) list[i] = args[i];
  list[argc] = start;
  list[argc + 1] = end;
  list[argc + 2] = ctrl[W_SCRATCH] + tid * SCRATCH_BYTES;
  const code = kernels[ctrl[W_KERNEL]](...list);
  if (code !== 0) Atomics.store(ctrl, W_ERROR, code);
}

/** Worker main loop (runs inside each worker thread; see worker.ts). */
export async function workerLoop(init: WorkerInit, ready: () => void): Promise<void> {
  if (init.relaxed) await enableRelaxedSimd();
  const instance = await WebAssembly.instantiate(init.module, { env: { memory: init.memory, abort: wasmAbort } });
  const kernels = init.names.map((name) => instance.exports[name] as KernelFn);
  const ctrl = new Int32Array(init.memory.buffer, CTRL, 16);
  const args = new Float64Array(init.memory.buffer, CTRL + 64, MAX_ARGS);
  let gen = Atomics.load(ctrl, W_GEN);
  ready();
  for (;;) {
    // Spin briefly before sleeping: kernels of one training step follow each other closely.
    let spins = 0;
    while (Atomics.load(ctrl, W_GEN) === gen && spins < 20000) spins++;
    if (Atomics.load(ctrl, W_GEN) === gen) Atomics.wait(ctrl, W_GEN, gen);
    gen = Atomics.load(ctrl, W_GEN);
    if (ctrl[W_QUIT]) return;
    runSlice(ctrl, args, kernels, init.tid);
    Atomics.add(ctrl, W_DONE, 1);
    Atomics.notify(ctrl, W_DONE);
  }
}

function wasmAbort(): never {
  throw new Error('cpu kernel aborted');
}

let relaxedFlagSet = false;
/** Node 20's V8 ships relaxed SIMD behind a flag; platforms that cannot set flags simply lack it. */
async function enableRelaxedSimd(): Promise<void> {
  if (relaxedFlagSet) return;
  relaxedFlagSet = true;
  const platform = await loadPlatform();
  platform.enableWasmRelaxedSimd();
}

/** Error codes returned by kernels (keep in sync with assembly/*.ts). */
export const KERNEL_ERRORS: Record<number, string> = {
  1: 'index out of range',
  2: 'scratch area too small',
  3: 'bad argument (unknown op code or mode)',
};

export interface RuntimeOptions {
  /** Threads including the caller; default: every core the machine reports. */
  threads?: number;
  /** Use the relaxed-SIMD build when the engine validates it (default true). */
  relaxed?: boolean;
}

/** Whether this thread may block in Atomics.wait (false on a browser's main thread, found on first try). */
let mayBlock = true;

export class KernelRuntime {
  readonly memory: WebAssembly.Memory;
  readonly threads: number;
  readonly relaxed: boolean;
  /** Kernels of the caller's own instance, by export name. */
  readonly fn: Record<string, KernelFn>;
  private readonly names: string[];
  private readonly index = new Map<string, number>();
  private readonly kernels: KernelFn[];
  private readonly workers: WorkerHandle[];
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private heapTop = HEAP_BASE;
  private readonly freeLists = new Map<number, number[]>();
  private readonly sizes = new Map<number, number>();
  private views: { f32: Float32Array; i32: Int32Array; f64: Float64Array; u8: Uint8Array } | null = null;
  /** Bytes currently handed out (for memory-growth tests and reports). */
  liveBytes = 0;

  private constructor(
    memory: WebAssembly.Memory,
    instance: WebAssembly.Instance,
    names: string[],
    workers: WorkerHandle[],
    relaxed: boolean,
  ) {
    this.memory = memory;
    this.relaxed = relaxed;
    this.names = names;
    this.workers = workers;
    this.threads = workers.length + 1;
    this.fn = {};
    this.kernels = names.map((name, i) => {
      this.index.set(name, i);
      const f = instance.exports[name] as KernelFn;
      this.fn[name] = f;
      return f;
    });
    this.ctrl = new Int32Array(memory.buffer, CTRL, 16);
    this.args = new Float64Array(memory.buffer, CTRL + 64, MAX_ARGS);
    const scratch = this.malloc(SCRATCH_BYTES * this.threads);
    Atomics.store(this.ctrl, W_SCRATCH, scratch);
  }

  static async create(options: RuntimeOptions = {}): Promise<KernelRuntime> {
    const platform = await loadPlatform();
    let relaxed = options.relaxed !== false && platform.enableWasmRelaxedSimd();
    let bytes: Uint8Array<ArrayBuffer> | null = null;
    if (relaxed) {
      bytes = await platform.readAsset(new URL('./kernels-relaxed.wasm', import.meta.url));
      if (!WebAssembly.validate(bytes)) relaxed = false;
    }
    if (!relaxed) bytes = await platform.readAsset(new URL('./kernels-simd.wasm', import.meta.url));
    const module = await WebAssembly.compile(bytes!);
    const memory = new WebAssembly.Memory({ initial: HEAP_BASE / PAGE + 64, maximum: MAX_PAGES, shared: true });
    const instance = await WebAssembly.instantiate(module, { env: { memory, abort: wasmAbort } });
    const names = WebAssembly.Module.exports(module)
      .filter((e) => e.kind === 'function')
      .map((e) => e.name);
    const threads = Math.max(1, Math.floor(options.threads ?? platform.cores()));
    const workers: WorkerHandle[] = [];
    for (let tid = 1; tid < threads; tid++) {
      workers.push(
        await platform.startWorker(new URL('./worker.js', import.meta.url), { module, memory, names, tid, relaxed }),
      );
    }
    return new KernelRuntime(memory, instance, names, workers, relaxed);
  }

  /** Views of the whole memory, renewed after the memory grows. */
  heap(): { f32: Float32Array; i32: Int32Array; f64: Float64Array; u8: Uint8Array } {
    const buffer = this.memory.buffer;
    if (this.views === null || this.views.u8.byteLength !== buffer.byteLength) {
      this.views = {
        f32: new Float32Array(buffer),
        i32: new Int32Array(buffer),
        f64: new Float64Array(buffer),
        u8: new Uint8Array(buffer),
      };
    }
    return this.views;
  }

  /**
   * Allocates `bytes` (64-byte aligned, at least 64). Sizes are rounded to a size class so that
   * the buffers of one training step are reused by the next exactly. When free memory piles up
   * in classes nobody asks for any more (shapes that change from step to step), free neighbours
   * are merged and the best-fitting block is split, instead of growing the heap.
   */
  malloc(bytes: number): number {
    for (;;) {
      const ptr = this.tryMalloc(bytes);
      if (ptr >= 0) return ptr;
      // Full: the pager (pager.ts) moves tensors out to host memory; retry while it can.
      if (this.onPressure === null || !this.onPressure(sizeClass(bytes))) {
        throw new Error(
          `cpu backend: out of memory allocating ${bytes} bytes (${gib(this.liveBytes)} live in the ` +
            `WebAssembly memory, which holds at most ${gib(Math.min(this.limitBytes, this.addressLimit))}` +
            (this.onPressure === null ? ')' : ', all of it needed by the running kernel)'),
        );
      }
    }
  }

  /**
   * Most bytes live at once (besides the 4 GiB address limit of wasm32). Lowering it makes the
   * pager move tensors out sooner (tests exercise paging with a few MiB).
   */
  limitBytes = MAX_PAGES * PAGE;

  /** Highest address + 1 a block may reach: 4 GiB (wasm32); tests lower it to exercise fragmentation. */
  addressLimit = MAX_PAGES * PAGE;

  /**
   * Called when an allocation does not fit under limitBytes, with the bytes wanted; returns true
   * when it freed something (the allocation is then retried), false when nothing can be freed.
   */
  onPressure: ((bytes: number) => boolean) | null = null;

  /** malloc without the pressure hook: the address, or -1 when the memory is full. */
  tryMalloc(bytes: number): number {
    let size = sizeClass(bytes);
    if (this.liveBytes + size > this.limitBytes) return -1;
    const list = this.freeLists.get(size);
    let ptr = list !== undefined && list.length > 0 ? list.pop()! : -1;
    if (ptr < 0 && this.fragmented(size)) {
      this.coalesce();
      const fit = this.bestFit(size);
      if (fit >= 0) ptr = fit;
    }
    if (ptr < 0) {
      ptr = this.heapTop;
      const top = ptr + size;
      if (top > this.addressLimit) return -1;
      const have = this.memory.buffer.byteLength;
      if (top > have) {
        // Grow by at least an eighth so that growth (and view renewal) stays rare.
        const want = Math.max(Math.ceil((top - have) / PAGE), Math.ceil(have / PAGE / 8));
        this.memory.grow(Math.min(want, MAX_PAGES - have / PAGE));
      }
      this.heapTop = top;
    } else {
      size = this.blockSize.get(ptr) ?? size;
    }
    this.blockSize.delete(ptr);
    this.sizes.set(ptr, size);
    this.liveBytes += size;
    return ptr;
  }

  free(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`cpu backend: free of unknown pointer ${ptr}`);
    this.sizes.delete(ptr);
    this.liveBytes -= size;
    this.pushFree(ptr, size);
  }

  /** Free blocks by address -> size (every free block is in one free list too). */
  private readonly blockSize = new Map<number, number>();

  private pushFree(ptr: number, size: number): void {
    let list = this.freeLists.get(size);
    if (list === undefined) this.freeLists.set(size, (list = []));
    list.push(ptr);
    this.blockSize.set(ptr, size);
  }

  /** Free memory exceeds a sixteenth of the live memory (or growing would hit the 4 GiB ceiling). */
  private fragmented(size: number): boolean {
    const reserved = this.heapTop - HEAP_BASE;
    return (
      this.heapTop + size > this.addressLimit || reserved - this.liveBytes > Math.max(this.liveBytes / 16, 64 << 20)
    );
  }

  /** Merges adjacent free blocks; a free block at the top of the heap lowers the top. */
  private coalesce(): void {
    const blocks = [...this.blockSize].sort((a, b) => a[0] - b[0]);
    this.freeLists.clear();
    this.blockSize.clear();
    const merged: [number, number][] = [];
    for (const [p, n] of blocks) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === p) last[1] += n;
      else merged.push([p, n]);
    }
    const top = merged[merged.length - 1];
    if (top && top[0] + top[1] === this.heapTop) {
      this.heapTop = top[0];
      merged.pop();
    }
    for (const [p, n] of merged) this.pushFree(p, n);
  }

  /** The smallest free block of at least `size` bytes, split if much larger; -1 if none. */
  private bestFit(size: number): number {
    let best = Infinity;
    for (const [n, l] of this.freeLists) if (n >= size && n < best && l.length > 0) best = n;
    if (best === Infinity) return -1;
    const ptr = this.freeLists.get(best)!.pop()!;
    this.blockSize.delete(ptr);
    if (best - size >= 4096) {
      this.pushFree(ptr + size, best - size);
      this.blockSize.set(ptr, size); // read back by malloc as the block's size
    } else {
      this.blockSize.set(ptr, best);
    }
    return ptr;
  }

  /**
   * Slides the live blocks that `movable` allows down over the free space before them (the others
   * stay, and free space before them stays free), telling `moved` where each went; the heap's top
   * comes down. A move is a memmove inside the memory: the pager (pager.ts) compacts before it
   * moves anything out to the host. No kernel may be running.
   */
  compact(movable: (ptr: number) => boolean, moved: (from: number, to: number) => void): void {
    const live = [...this.sizes].sort((a, b) => a[0] - b[0]);
    if (live.length === 0) return;
    const u8 = this.heap().u8;
    this.freeLists.clear();
    this.blockSize.clear();
    let cursor = HEAP_BASE;
    for (const [p, n] of live) {
      if (movable(p)) {
        if (p !== cursor) {
          u8.copyWithin(cursor, p, p + n);
          this.sizes.delete(p);
          this.sizes.set(cursor, n);
          moved(p, cursor);
        }
        cursor += n;
      } else {
        if (p > cursor) this.pushFree(cursor, p - cursor);
        cursor = p + n;
      }
    }
    this.heapTop = cursor;
  }

  /** Bytes of the largest free block, counting the room above the top (what one allocation can get). */
  largestHole(): number {
    let most = this.addressLimit - this.heapTop;
    for (const n of this.blockSize.values()) if (n > most) most = n;
    return most;
  }

  /**
   * The heap's blocks in address order: [address, bytes, live], covering it without gaps, with the
   * room above the top (up to 4 GiB) as a last free block. The pager picks a run of them to clear.
   */
  blocks(): [number, number, boolean][] {
    const out: [number, number, boolean][] = [];
    for (const [p, n] of this.sizes) out.push([p, n, true]);
    for (const [p, n] of this.blockSize) out.push([p, n, false]);
    out.sort((a, b) => a[0] - b[0]);
    if (this.heapTop < this.addressLimit) out.push([this.heapTop, this.addressLimit - this.heapTop, false]);
    return out;
  }

  /** Bytes reserved from the memory so far (live + free lists). */
  get reservedBytes(): number {
    return this.heapTop - HEAP_BASE;
  }

  /**
   * Writes small int32 arrays (shapes, strides) where kernels can read them; returns the address.
   * The area is reused by the next call, so pass the pointer to exactly one `run`.
   */
  meta(values: readonly number[]): number {
    if (values.length > META_WORDS) throw new Error(`cpu backend: ${values.length} metadata words (max ${META_WORDS})`);
    this.heap().i32.set(values, META / 4);
    return META;
  }

  has(name: string): boolean {
    return this.index.has(name);
  }

  /**
   * Runs kernel `name` with `args`, over the work range [0, n) split across threads in slices
   * aligned to `grain` units. Work smaller than `minParallel` units runs on the caller alone.
   */
  run(name: string, args: number[], n: number, grain = 1, minParallel = 1): void {
    const k = this.index.get(name);
    if (k === undefined) throw new Error(`cpu backend: no kernel named ${name}`);
    if (args.length > MAX_ARGS - 3) throw new Error(`cpu backend: too many arguments for ${name}`);
    if (n <= 0) return;
    const ctrl = this.ctrl;
    const parts = n < minParallel || this.threads === 1 ? 1 : Math.min(this.threads, Math.ceil(n / grain));
    ctrl[W_KERNEL] = k;
    ctrl[W_N] = n;
    ctrl[W_THREADS] = parts;
    ctrl[W_GRAIN] = grain;
    ctrl[W_ARGC] = args.length;
    ctrl[W_ERROR] = 0;
    for (let i = 0; i < args.length; i++) this.args[i] = args[i];
    if (parts > 1) {
      Atomics.store(ctrl, W_DONE, 0);
      Atomics.add(ctrl, W_GEN, 1);
      Atomics.notify(ctrl, W_GEN);
    }
    runSlice(ctrl, this.args, this.kernels, 0);
    if (parts > 1) {
      // Workers whose slice is empty still report, so wait for all of them.
      const others = this.workers.length;
      for (;;) {
        const done = Atomics.load(ctrl, W_DONE);
        if (done >= others) break;
        let spins = 0;
        while (Atomics.load(ctrl, W_DONE) === done && spins < 100000) spins++;
        if (Atomics.load(ctrl, W_DONE) === done && mayBlock) {
          // A browser's main thread may not block (Atomics.wait throws there): it keeps spinning.
          try {
            Atomics.wait(ctrl, W_DONE, done, 1);
          } catch {
            mayBlock = false;
          }
        }
      }
    }
    const code = ctrl[W_ERROR];
    if (code !== 0) throw new Error(`cpu kernel ${name}: ${KERNEL_ERRORS[code] ?? `error code ${code}`}`);
  }

  /** Stops the workers (the process can also just exit: workers do not keep it alive). */
  async close(): Promise<void> {
    this.ctrl[W_QUIT] = 1;
    Atomics.add(this.ctrl, W_GEN, 1);
    Atomics.notify(this.ctrl, W_GEN);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Bytes for messages: GiB from 1 GiB up, else MiB. */
function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Size classes: multiples of 64 B up to 4 KiB, then 8 steps per power of two. */
export function sizeClass(bytes: number): number {
  const b = Math.max(64, Math.ceil(bytes / 64) * 64);
  if (b <= 4096) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

export type { Platform };
