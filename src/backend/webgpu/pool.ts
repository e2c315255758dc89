// A pool of GPU storage buffers by size class: a freed buffer goes back to its class and the next
// allocation of that class reuses it, so training steps that repeat the same shapes create no
// buffers after the first two (the first also creates the optimizer state). Reuse needs no fence: all GPU work runs in queue order, so work
// encoded after the free sees the buffer only after the earlier users are done.

/** WebGPU's buffer usage bits (GPUBufferUsage), spelled out so that no global is needed. */
export const USAGE = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
} as const;

const MIB = 1 << 20;

/**
 * The size class of a request: powers of two up to 1 MiB, then steps of 1/8 of the power of two
 * below (at most 12.5% waste); never above `cap` (the largest buffer a shader may bind).
 */
export function sizeClass(bytes: number, cap: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  let c: number;
  if (b <= MIB) c = 2 ** Math.ceil(Math.log2(b));
  else {
    const step = 2 ** (Math.floor(Math.log2(b)) - 3);
    c = Math.ceil(b / step) * step;
  }
  return Math.min(c, Math.max(b, Math.floor(cap / 16) * 16));
}

/** The adaptive idle limit never goes below this. */
const MIN_IDLE = 256 * 2 ** 20;

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Bytes in buffers that are idle in the pool. */
  idleBytes = 0;
  /** Bytes in all buffers this pool created and has not destroyed. */
  totalBytes = 0;
  /** The most bytes in use (not idle) at once so far. */
  peakInUse = 0;
  /**
   * Whether recorded work not yet submitted may use released buffers: a buffer destroyed before
   * the submit that uses it fails that submit, so trimming waits for `trimExcess` after it.
   */
  pendingWork: () => boolean = () => false;

  constructor(
    device: GPUDevice,
    readonly usage: number,
    private readonly cap: number,
    /**
     * Idle bytes kept before the largest idle buffers are destroyed; null: as many as the most
     * bytes ever in use at once (a training step frees and then needs again the same buffers, so
     * the pool then holds no more than the step's peak, and nothing is created twice).
     */
    private readonly maxIdle: number | null,
    /** Creates a buffer (the runtime's watches for out-of-memory errors). */
    private readonly create: (size: number, usage: number) => GPUBuffer = (size, usage) =>
      device.createBuffer({ size, usage }),
  ) {}

  classOf(bytes: number): number {
    return sizeClass(bytes, this.cap);
  }

  acquire(bytes: number): GPUBuffer {
    const c = this.classOf(bytes);
    const list = this.free.get(c);
    if (list && list.length > 0) {
      this.idleBytes -= c;
      return list.pop()!;
    }
    const buf = this.create(c, this.usage);
    this.totalBytes += c;
    this.peakInUse = Math.max(this.peakInUse, this.totalBytes - this.idleBytes);
    return buf;
  }

  release(buf: GPUBuffer): void {
    const c = buf.size;
    let list = this.free.get(c);
    if (!list) this.free.set(c, (list = []));
    list.push(buf);
    this.idleBytes += c;
    if (!this.pendingWork()) this.trimExcess();
  }

  /** Trims to half of the idle limit once the idle bytes exceed it; returns the buffers destroyed. */
  trimExcess(): number {
    const limit = this.maxIdle ?? Math.max(MIN_IDLE, this.peakInUse);
    return this.idleBytes > limit ? this.trim(limit / 2) : 0;
  }

  /** Destroys idle buffers, largest classes first, until at most `keep` idle bytes remain. */
  trim(keep = 0): number {
    const classes = [...this.free.keys()].sort((a, b) => b - a);
    let destroyed = 0;
    for (const c of classes) {
      const list = this.free.get(c)!;
      while (list.length > 0 && this.idleBytes > keep) {
        list.pop()!.destroy();
        this.idleBytes -= c;
        this.totalBytes -= c;
        destroyed++;
      }
    }
    return destroyed;
  }
}
