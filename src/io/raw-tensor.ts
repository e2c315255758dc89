// RawTensor: one tensor as stored in a checkpoint file (dtype, shape, raw values), before any
// tensor engine sees it. Values may be read from the file only when first asked for (lazy).
import { bytesOf, DTYPES, dtypeSize, numel, viewAs, type DType, type TypedData } from './dtype.js';
import { bf16ToF32, f16ToF32, f32ToBf16 } from './half.js';

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
}

/** Where a tensor's bytes come from: in memory already, or a reader called on demand. */
export type ByteSource = Uint8Array | (() => Uint8Array);

class StoredTensor implements RawTensor {
  private cached: TypedData | undefined;
  readonly byteLength: number;

  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    private readonly source: ByteSource,
    private readonly origin: string,
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
    switch (this.dtype) {
      case 'F32':
        return d as Float32Array;
      case 'BF16':
        return bf16ToF32(d as Uint16Array);
      case 'F16':
        return f16ToF32(d as Uint16Array);
      case 'I64':
      case 'U64': {
        const out = new Float32Array(d.length);
        for (let i = 0; i < d.length; i++) out[i] = Number((d as BigInt64Array)[i]);
        return out;
      }
      default:
        return Float32Array.from(d as Float64Array);
    }
  }

  toBf16(): Uint16Array {
    return this.dtype === 'BF16' ? (this.peek() as Uint16Array) : f32ToBf16(this.toFloat32());
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

/** A RawTensor over bytes in memory (aligned to the dtype's size) or a lazy byte reader.
 *  `origin` names the file in error messages. */
export function rawTensor(
  name: string,
  dtype: DType,
  shape: readonly number[],
  source: ByteSource,
  origin = 'memory',
): RawTensor {
  return new StoredTensor(name, dtype, Object.freeze([...shape]), source, origin);
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
