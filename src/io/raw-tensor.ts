// RawTensor: one tensor as stored in a checkpoint file (dtype, shape, raw values), before any
// tensor engine sees it. Values may be read from the file only when first asked for (lazy), and
// converted a chunk at a time (float32Chunks / bf16Chunks), so that loading a model needs a few
// MiB of host memory beside the tensors it fills rather than a host copy of each whole tensor.
import { bytesOf, DTYPES, dtypeSize, numel, viewAs, type DType, type TypedData } from './dtype.js';
import { bf16ToF32, f16ToF32, f32ToBf16 } from './half.js';

/** Elements per chunk of float32Chunks / bf16Chunks by default: 4 MiB of float32. */
export const CHUNK_ELEMENTS = 1 << 20;

export interface RawTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Raw values: F16/BF16 as their Uint16 bit patterns, I64 as BigInt64Array, BOOL as Uint8Array.
   *  For a lazily read file, the first access reads the bytes and keeps them. */
  readonly data: TypedData;
  readonly byteLength: number;
  /** Values as float32. F32 returns the stored array itself (no copy); other dtypes convert into
   *  a new array (F16/BF16 exactly, F64 rounded). A lazy tensor is read but not kept. */
  toFloat32(): Float32Array;
  /** bfloat16 bit patterns: BF16 as stored (no copy), other float dtypes rounded to nearest even.
   *  A lazy tensor is read but not kept. */
  toBf16(): Uint16Array;
  /** Integer values as int32. I32 returns the stored array; I64/U64/U32 are checked to fit. */
  toInt32(): Int32Array;
  /**
   * toFloat32()'s values, `chunk` elements at a time in order (the last chunk shorter): `fn(values,
   * offset)`. `values` is scratch memory that the next chunk overwrites (copy it out). A lazy
   * tensor with a range reader is read from its file chunk by chunk and nothing is kept.
   */
  float32Chunks(fn: (values: Float32Array, offset: number) => void, chunk?: number): void;
  /** toBf16()'s bit patterns, a chunk at a time, as float32Chunks. */
  bf16Chunks(fn: (bits: Uint16Array, offset: number) => void, chunk?: number): void;
}

/** Where a tensor's bytes come from: in memory already, or a reader called on demand. */
export type ByteSource = Uint8Array | (() => Uint8Array);

/**
 * Piecewise reads of a lazy tensor's bytes: `session(use)` opens the source (checking that it is
 * unchanged), calls `use` with `fill(dst, at)`, which copies bytes [at, at + dst.byteLength) of the
 * tensor into `dst`, and closes the source when `use` returns.
 */
export type RangeSource = (use: (fill: (dst: Uint8Array, at: number) => void) => void) => void;

/** Scratch buffers of chunked reads, kept for the next read; a nested read takes another one. */
const spare: ArrayBuffer[][] = [];

/** Runs `fn` with scratch ArrayBuffers of at least `bytes[i]` bytes each, kept in `spare` afterwards. */
function withScratch(bytes: number[], fn: (bufs: ArrayBuffer[]) => void): void {
  const bufs = spare.pop() ?? [];
  bytes.forEach((b, i) => {
    if (!(bufs[i]?.byteLength >= b)) bufs[i] = new ArrayBuffer(b);
  });
  try {
    fn(bufs);
  } finally {
    spare.push(bufs);
  }
}

/** `d`'s values as float32 into `out` (of d's length): F16 / BF16 exactly, wider types rounded to nearest. */
function float32Into(dtype: DType, d: TypedData, out: Float32Array<ArrayBuffer>): Float32Array {
  switch (dtype) {
    case 'BF16':
      return bf16ToF32(d as Uint16Array, out);
    case 'F16':
      return f16ToF32(d as Uint16Array, out);
    case 'I64':
    case 'U64':
      for (let i = 0; i < d.length; i++) out[i] = Number((d as BigInt64Array)[i]);
      return out;
    default:
      out.set(d as Float64Array); // per element: ToNumber, then round to nearest float32 (as Float32Array.from)
      return out;
  }
}

class StoredTensor implements RawTensor {
  private cached: TypedData | undefined;
  readonly byteLength: number;

  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    private readonly source: ByteSource,
    private readonly origin: string,
    private readonly ranges?: RangeSource,
  ) {
    this.byteLength = numel(shape) * dtypeSize(dtype);
    if (typeof source !== 'function') this.cached = this.check(source);
  }

  private check(bytes: Uint8Array): TypedData {
    if (bytes.byteLength !== this.byteLength) {
      throw new Error(`RawTensor: ${this.where()} needs ${this.byteLength} bytes, got ${bytes.byteLength}`);
    }
    return viewAs(this.dtype, bytes);
  }

  get data(): TypedData {
    if (!this.cached) this.cached = this.check((this.source as () => Uint8Array)());
    return this.cached;
  }

  private peek(): TypedData {
    return this.cached ?? this.check((this.source as () => Uint8Array)());
  }

  toFloat32(): Float32Array {
    const d = this.peek();
    return this.dtype === 'F32' ? (d as Float32Array) : float32Into(this.dtype, d, new Float32Array(d.length));
  }

  toBf16(): Uint16Array {
    return this.dtype === 'BF16' ? (this.peek() as Uint16Array) : f32ToBf16(this.toFloat32());
  }

  float32Chunks(fn: (values: Float32Array, offset: number) => void, chunk = CHUNK_ELEMENTS): void {
    const n = Math.min(this.checkChunk(chunk), numel(this.shape));
    withScratch(this.dtype === 'F32' ? [] : [n * 4], ([f32]) =>
      this.rawChunks(chunk, (d, at) =>
        fn(
          this.dtype === 'F32' ? (d as Float32Array) : float32Into(this.dtype, d, new Float32Array(f32, 0, d.length)),
          at,
        ),
      ),
    );
  }

  bf16Chunks(fn: (bits: Uint16Array, offset: number) => void, chunk = CHUNK_ELEMENTS): void {
    const n = Math.min(this.checkChunk(chunk), numel(this.shape));
    withScratch(this.dtype === 'BF16' ? [] : [this.dtype === 'F32' ? 0 : n * 4, n * 2], ([f32, u16]) =>
      this.rawChunks(chunk, (d, at) => {
        if (this.dtype === 'BF16') return fn(d as Uint16Array, at);
        const wide =
          this.dtype === 'F32' ? (d as Float32Array) : float32Into(this.dtype, d, new Float32Array(f32, 0, d.length));
        fn(f32ToBf16(wide, new Uint16Array(u16, 0, d.length)), at);
      }),
    );
  }

  private checkChunk(chunk: number): number {
    if (!Number.isSafeInteger(chunk) || chunk < 1)
      throw new Error(`RawTensor: chunk must be a positive integer number of elements, got ${chunk} (${this.where()})`);
    return chunk;
  }

  /** The stored values `chunk` elements at a time: views of the data in memory, or read from the file into scratch. */
  private rawChunks(chunk: number, fn: (d: TypedData, offset: number) => void): void {
    const n = numel(this.shape),
      size = dtypeSize(this.dtype);
    if (this.cached !== undefined || this.ranges === undefined) {
      const d = this.peek();
      for (let at = 0; at < n; at += chunk) fn(d.subarray(at, Math.min(n, at + chunk)), at);
      return;
    }
    const ranges = this.ranges;
    withScratch([Math.min(chunk, n) * size], ([buf]) =>
      ranges((fill) => {
        for (let at = 0; at < n; at += chunk) {
          const bytes = new Uint8Array(buf, 0, Math.min(chunk, n - at) * size);
          fill(bytes, at * size);
          fn(viewAs(this.dtype, bytes), at);
        }
      }),
    );
  }

  toInt32(): Int32Array {
    const d = this.peek();
    switch (this.dtype) {
      case 'I32':
        return d as Int32Array;
      case 'I64':
      case 'U64':
        return int64ToInt32(d as BigInt64Array, this.dtype === 'U64', this.where());
      case 'U32': {
        const i = (d as Uint32Array).findIndex((v) => v > 0x7fffffff);
        if (i >= 0) throw new Error(`RawTensor.toInt32: ${this.where()} holds ${d[i]} at index ${i}, beyond int32`);
        return new Int32Array(d.buffer, d.byteOffset, d.length);
      }
      case 'F32':
      case 'F64':
      case 'F16':
      case 'BF16':
        throw new Error(`RawTensor.toInt32: ${this.where()} is ${this.dtype}, not an integer dtype (use toFloat32)`);
      default:
        return Int32Array.from(d as Uint8Array);
    }
  }

  private where(): string {
    return `tensor '${this.name}' (${this.dtype} [${this.shape.join(', ')}]) of ${this.origin}`;
  }
}

/** int64 -> int32 via the two 32-bit halves: fits iff the high word is the low word's sign. */
function int64ToInt32(d: BigInt64Array, unsigned: boolean, where: string): Int32Array {
  const w = new Int32Array(d.buffer, d.byteOffset, d.length * 2); // little-endian: lo, hi
  const out = new Int32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const lo = w[2 * i],
      hi = w[2 * i + 1];
    if (hi !== (unsigned ? 0 : lo >> 31) || (unsigned && lo < 0)) {
      throw new Error(`RawTensor.toInt32: ${where} holds ${d[i]} at index ${i}, outside the int32 range`);
    }
    out[i] = lo;
  }
  return out;
}

/** A RawTensor over bytes in memory (aligned to the dtype's size) or a lazy byte reader, with
 *  `ranges` to read a lazy tensor piecewise (chunked reads). `origin` names the file in error messages. */
export function rawTensor(
  name: string,
  dtype: DType,
  shape: readonly number[],
  source: ByteSource,
  origin = 'memory',
  ranges?: RangeSource,
): RawTensor {
  return new StoredTensor(name, dtype, Object.freeze([...shape]), source, origin, ranges);
}

/** A RawTensor holding `data` (a typed array of the dtype's kind, numel(shape) long). */
export function tensorFrom(name: string, dtype: DType, shape: readonly number[], data: TypedData): RawTensor {
  const want = DTYPES[dtype].array;
  if (!(data instanceof want) || data.length !== numel(shape)) {
    throw new Error(
      `tensorFrom: '${name}' of shape [${shape.join(', ')}] needs ${numel(shape)} ${dtype} ` +
        `values in a ${want.name}, got ${data.length} in a ${data.constructor.name}`,
    );
  }
  return rawTensor(name, dtype, shape, bytesOf(data));
}
