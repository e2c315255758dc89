// Residency of CPU tensors beyond the 4 GiB of a wasm32 memory. Kernels (WebAssembly and native)
// address tensors inside the runtime's WebAssembly memory; when that memory is full, the least
// recently used tensors that the running kernel does not touch move out to host buffers (ordinary
// ArrayBuffers, outside the 4 GiB) and come back when a kernel needs them. A run's limit becomes
// the machine's RAM; one kernel's operands must still fit in the WebAssembly memory together.
// Nothing changes while everything fits: no tensor moves until an allocation would fail.
import type { Storage } from '../../core/backend.js';
import type { KernelRuntime } from './runtime.js';

/** A CPU storage as the pager sees it. */
export interface PagedStorage extends Storage {
  /** Byte address in the runtime memory while resident, -1 while it lives in `host`. */
  ptr: number;
  /** The storage's bytes while spilled. */
  host: Uint8Array | null;
  /**
   * Allocated while the memory was full and not written yet: neither resident nor in `host`
   * (place). It gets memory where it is first needed, without copying anything.
   */
  blank: boolean;
  /** Bytes of data (size x element bytes, at least 1). */
  readonly bytes: number;
  /** Clock value of the last kernel that used it (least recently used moves out first). */
  lastUse: number;
  /** Kernels in progress that need it resident (never moved out while > 0). */
  pins: number;
}

/** Where the runtime's heap begins (runtime.ts HEAP_BASE): reservedBytes counts from there. */
const HEAP_START = 1 << 20;

/**
 * Host buffers of reloaded or freed tensors kept for the next spill of the same size, at most this
 * many bytes. A training step moves the same tensors out and back again and again (tens of GiB per
 * step at full fine-tuning of a 0.5B model); a buffer dropped instead waits for the garbage
 * collector. (One arena of 1 GiB segments reused for every size was measured too: 0.5 GiB more
 * peak RSS on the 0.5B run, as fresh segments do not reuse the memory the allocator freed earlier.)
 */
const HOST_POOL_BYTES = 2 ** 31;
/** Storages this large are left blank rather than moving others out for them (place). */
const MIN_BLANK_BYTES = 1 << 20;
/** Moving out at least this much per pressure event keeps the sorting of candidates rare. */
const MIN_EVICT_BYTES = 64 << 20;

export interface PagerStats {
  /** Bytes currently spilled to host buffers, and the most at any time. */
  spilledBytes: number;
  peakSpilledBytes: number;
  /** Bytes live inside the WebAssembly memory when the spilled bytes peaked (what the rest was left to). */
  residentAtPeak: number;
  /** Compactions inside the WebAssembly memory, and the bytes they moved there. */
  compactions: number;
  movedInside: number;
  /** Tensors moved out / back in so far, and the bytes they carried. */
  spills: number;
  reloads: number;
  movedBytes: number;
}

export class Pager {
  private clock = 0;
  private readonly resident = new Set<PagedStorage>();
  private readonly hostPool = new Map<number, Uint8Array[]>();
  private hostPoolBytes = 0;
  /** The pooled buffers, kept longest first. */
  private readonly poolOrder = new Set<Uint8Array>();
  readonly stats: PagerStats = {
    spilledBytes: 0,
    peakSpilledBytes: 0,
    residentAtPeak: 0,
    compactions: 0,
    movedInside: 0,
    spills: 0,
    reloads: 0,
    movedBytes: 0,
  };

  constructor(private readonly rt: KernelRuntime) {
    rt.onPressure = (bytes) => this.evict(bytes);
  }

  /**
   * Allocates a storage's memory. When the memory is full, a large storage is left blank instead
   * of moving others out for it: one that only native kernels touch (a gradient) then never takes
   * room in the WebAssembly memory, and one that a WebAssembly kernel writes gets its room then,
   * without a copy either way.
   */
  place(s: PagedStorage): void {
    s.lastUse = ++this.clock;
    const ptr = s.bytes >= MIN_BLANK_BYTES ? this.rt.tryMalloc(s.bytes) : this.rt.malloc(s.bytes);
    if (ptr < 0) {
      s.blank = true;
      return;
    }
    s.ptr = ptr;
    this.resident.add(s);
  }

  /** The host bytes of a storage outside the WebAssembly memory (a blank one gets them now). */
  hostBytes(s: PagedStorage): Uint8Array {
    if (s.blank) {
      s.host = this.hostBuffer(s.bytes);
      s.blank = false;
      this.counted(s.bytes);
    }
    return s.host!;
  }

  release(s: PagedStorage): void {
    s.blank = false;
    if (s.ptr >= 0) {
      this.rt.free(s.ptr);
      this.resident.delete(s);
    } else if (s.host !== null) {
      this.stats.spilledBytes -= s.bytes;
      this.recycle(s.host);
    }
    s.host = null;
    s.ptr = -1;
  }

  /** Makes `s` resident (reloading it if spilled) and marks it used now. */
  ensure(s: PagedStorage): void {
    s.lastUse = ++this.clock;
    if (s.ptr >= 0) return;
    s.pins++; // the reload's own allocation must not pick it
    try {
      const ptr = this.rt.malloc(s.bytes);
      if (s.blank)
        s.blank = false; // nothing written yet: nothing to copy
      else {
        this.rt.heap().u8.set(s.host!, ptr);
        this.recycle(s.host!);
        s.host = null;
        this.stats.spilledBytes -= s.bytes;
        this.stats.reloads++;
        this.stats.movedBytes += s.bytes;
      }
      s.ptr = ptr;
      this.resident.add(s);
    } finally {
      s.pins--;
    }
  }

  /**
   * Runs `fn` with every storage of `operands` resident and pinned there. Until `fn` starts, pinned
   * storages may still slide inside the memory (compaction; nobody holds their addresses yet); while
   * it runs they stay put.
   */
  pinned<T>(operands: PagedStorage[], fn: () => T): T {
    for (const s of operands) s.pins++;
    try {
      for (const s of operands) this.ensure(s);
      this.running++;
      try {
        return fn();
      } finally {
        this.running--;
      }
    } finally {
      for (const s of operands) s.pins--;
    }
  }

  /**
   * Runs `fn`, a kernel that takes its operands where they lie (native kernels read a spilled
   * storage's host bytes), with them pinned: nothing is reloaded, and their last use is not
   * updated, so that storages only such kernels touch are the first to move out under pressure
   * (they never have to come back).
   */
  inPlace<T>(operands: PagedStorage[], fn: () => T): T {
    for (const s of operands) s.pins++;
    this.running++;
    try {
      return fn();
    } finally {
      this.running--;
      for (const s of operands) s.pins--;
    }
  }

  /** Kernels in progress (their operands' addresses are in use). */
  private running = 0;

  /**
   * Frees room for an allocation of `bytes` that failed: when live bytes would pass the runtime's
   * limit, moves unpinned storages out least recently used first (at least MIN_EVICT_BYTES);
   * otherwise the memory has no contiguous hole that large, so it clears the cheapest run of
   * adjacent blocks that is. False when nothing could move.
   */
  evict(bytes: number): boolean {
    if (this.rt.liveBytes + bytes > this.rt.limitBytes) return this.evictOldest(bytes);
    // Enough free memory in all but no hole that large: either slide tensors down inside the memory
    // (a memmove each) or move the cheapest run of adjacent blocks out, whichever copies less.
    let run = this.cheapestRun(bytes);
    if (this.rt.addressLimit - this.rt.reservedBytes - HEAP_START + this.freeInside() >= bytes) {
      if (run === null || this.compactionBytes() < run.cost) {
        const before = this.rt.largestHole();
        this.compact();
        this.stats.compactions++;
        if (this.rt.largestHole() >= bytes && this.rt.largestHole() > before) return true;
        run = this.cheapestRun(bytes);
      }
    }
    if (run === null) return this.evictOldest(bytes);
    for (const s of run.storages) this.spill(s);
    return true;
  }

  /** Bytes a compaction would move: the movable storages above the lowest hole. */
  private compactionBytes(): number {
    const byPtr = new Map<number, PagedStorage>();
    for (const s of this.resident) byPtr.set(s.ptr, s);
    let moved = 0,
      hole = false;
    for (const [ptr, size, live] of this.rt.blocks()) {
      if (!live) hole = true;
      else if (hole) {
        const s = byPtr.get(ptr);
        if (s !== undefined && (s.pins === 0 || this.running === 0)) moved += size;
      }
    }
    return moved;
  }

  /** Free bytes below the heap's top. */
  private freeInside(): number {
    return this.rt.reservedBytes - this.rt.liveBytes;
  }

  /** Slides resident storages down over the free space (runtime.ts compact): all of them between kernels, the unpinned ones while a kernel runs. */
  private compact(): void {
    const byPtr = new Map<number, PagedStorage>();
    for (const s of this.resident) byPtr.set(s.ptr, s);
    this.rt.compact(
      (ptr) => {
        const s = byPtr.get(ptr);
        return s !== undefined && (s.pins === 0 || this.running === 0);
      },
      (from, to) => {
        byPtr.get(from)!.ptr = to;
        this.stats.movedInside += byPtr.get(from)!.bytes;
      },
    );
  }

  private evictOldest(bytes: number): boolean {
    const want = Math.max(bytes, MIN_EVICT_BYTES);
    const candidates = [...this.resident].filter((s) => s.pins === 0).sort((a, b) => a.lastUse - b.lastUse);
    let freed = 0;
    for (const s of candidates) {
      if (freed >= want) break;
      this.spill(s);
      freed += s.bytes;
    }
    return freed > 0;
  }

  /**
   * The resident storages to move out so that `bytes` contiguous bytes become free: over the heap's
   * blocks in address order, the window of adjacent free blocks and unpinned storages of at least
   * `bytes` whose storages cost least, a storage costing its bytes, up to twice that when recently
   * used (it would come back soon), with that cost. Null when no window without a pinned or
   * runtime-owned block exists.
   */
  private cheapestRun(bytes: number): { storages: PagedStorage[]; cost: number } | null {
    const byPtr = new Map<number, PagedStorage>();
    let oldest = this.clock;
    for (const s of this.resident) {
      byPtr.set(s.ptr, s);
      if (s.lastUse < oldest) oldest = s.lastUse;
    }
    const span = this.clock - oldest + 1;
    const blocks = this.rt.blocks().map(([ptr, size, live]) => {
      const s = live ? byPtr.get(ptr) : undefined;
      const movable = !live || (s !== undefined && s.pins === 0);
      const cost = s === undefined ? 0 : s.bytes * (1 + (s.lastUse - oldest) / span);
      return { ptr, size, s, movable, cost };
    });
    let best: [number, number] | null = null,
      bestCost = Infinity;
    let i = 0,
      size = 0,
      cost = 0;
    for (let j = 0; j < blocks.length; j++) {
      const b = blocks[j];
      if (!b.movable) {
        i = j + 1;
        size = 0;
        cost = 0;
        continue;
      }
      size += b.size;
      cost += b.cost;
      while (i < j && size - blocks[i].size >= bytes) {
        size -= blocks[i].size;
        cost -= blocks[i].cost;
        i++;
      }
      if (size >= bytes && cost < bestCost) {
        bestCost = cost;
        best = [i, j];
      }
    }
    if (best === null) return null;
    const out: PagedStorage[] = [];
    for (let k = best[0]; k <= best[1]; k++) if (blocks[k].s !== undefined) out.push(blocks[k].s!);
    return { storages: out, cost: bestCost };
  }

  private spill(s: PagedStorage): void {
    const host = this.hostBuffer(s.bytes);
    host.set(this.rt.heap().u8.subarray(s.ptr, s.ptr + s.bytes));
    this.rt.free(s.ptr);
    this.resident.delete(s);
    s.ptr = -1;
    s.host = host;
    this.counted(s.bytes);
    this.stats.spills++;
    this.stats.movedBytes += s.bytes;
  }

  /** Counts `bytes` more held in host memory. */
  private counted(bytes: number): void {
    const st = this.stats;
    st.spilledBytes += bytes;
    if (st.spilledBytes > st.peakSpilledBytes) {
      st.peakSpilledBytes = st.spilledBytes;
      st.residentAtPeak = this.rt.liveBytes;
    }
  }

  private hostBuffer(bytes: number): Uint8Array {
    const pooled = this.hostPool.get(bytes)?.pop();
    if (pooled !== undefined) {
      this.hostPoolBytes -= bytes;
      this.poolOrder.delete(pooled);
      return pooled;
    }
    try {
      return new Uint8Array(bytes);
    } catch (e) {
      throw new Error(
        `cpu backend: out of host memory moving a ${bytes}-byte tensor out of the WebAssembly memory ` +
          `(${gib(this.stats.spilledBytes)} GiB already outside it, ${gib(this.rt.liveBytes)} GiB inside): ` +
          `${(e as Error).message}; use smaller batches, LoRA or frozen_dtype bfloat16`,
      );
    }
  }

  /**
   * Keeps a host buffer for the next spill of its size; beyond HOST_POOL_BYTES the buffers kept
   * longest go (a step frees and takes the same sizes again soon: the gradients, the activations).
   */
  private recycle(buf: Uint8Array): void {
    if (buf.byteLength > HOST_POOL_BYTES) return;
    for (const old of this.poolOrder) {
      if (this.hostPoolBytes + buf.byteLength <= HOST_POOL_BYTES) break;
      this.poolOrder.delete(old);
      const list = this.hostPool.get(old.byteLength)!;
      list.splice(list.indexOf(old), 1);
      this.hostPoolBytes -= old.byteLength;
    }
    let list = this.hostPool.get(buf.byteLength);
    if (list === undefined) this.hostPool.set(buf.byteLength, (list = []));
    list.push(buf);
    this.poolOrder.add(buf);
    this.hostPoolBytes += buf.byteLength;
  }
}

function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(2);
}
