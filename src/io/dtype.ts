// Element types of safetensors files: names as the format spells them, byte sizes, and the typed
// array that holds each one's raw values (F16 and BF16 keep their raw 16-bit patterns).

export type TypedData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

interface DTypeInfo {
  /** Bytes per element. */
  size: number;
  /** Typed array holding the raw values. */
  array: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedData; name: string };
  float: boolean;
}

/** Every dtype tsdpo reads and writes. */
export const DTYPES = {
  BOOL: { size: 1, array: Uint8Array, float: false },
  U8: { size: 1, array: Uint8Array, float: false },
  I8: { size: 1, array: Int8Array, float: false },
  I16: { size: 2, array: Int16Array, float: false },
  U16: { size: 2, array: Uint16Array, float: false },
  F16: { size: 2, array: Uint16Array, float: true }, // raw IEEE half bits
  BF16: { size: 2, array: Uint16Array, float: true }, // raw bfloat16 bits (top half of an f32)
  I32: { size: 4, array: Int32Array, float: false },
  U32: { size: 4, array: Uint32Array, float: false },
  F32: { size: 4, array: Float32Array, float: true },
  F64: { size: 8, array: Float64Array, float: true },
  I64: { size: 8, array: BigInt64Array, float: false },
  U64: { size: 8, array: BigUint64Array, float: false },
} as const satisfies Record<string, DTypeInfo>;

export type DType = keyof typeof DTYPES;

/** Dtypes the safetensors format defines that tsdpo refuses: quantized and complex types. */
const UNSUPPORTED = [
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F8_E4M3FNUZ',
  'F8_E5M2FNUZ',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
  'C64',
  'I4',
  'U4',
];

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.hasOwn(DTYPES, s);
}

export function dtypeSize(dtype: DType): number {
  return DTYPES[dtype].size;
}

/** Why a dtype string cannot be read: the text that follows "dtype X is ...". */
export function dtypeProblem(dtype: unknown): string {
  const supported = Object.keys(DTYPES).join(', ');
  if (typeof dtype === 'string' && UNSUPPORTED.includes(dtype)) {
    return (
      `unsupported (quantized/low-precision dtypes are not supported: dequantize the ` +
      `checkpoint to BF16, F16 or F32 first; supported: ${supported})`
    );
  }
  return `unknown (supported: ${supported})`;
}

/** Product of a shape's dims; 1 for a scalar []. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A typed array of `dtype` over `bytes` (which must be aligned to the element size). */
export function viewAs(dtype: DType, bytes: Uint8Array): TypedData {
  const { size, array } = DTYPES[dtype] as DTypeInfo;
  return new array(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
}

/** The bytes under a typed array (no copy). */
export function bytesOf(data: TypedData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
