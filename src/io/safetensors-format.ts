// The safetensors format without file access (usable in browsers too): the header, parsed with
// strict validation and encoded, and whole files held in memory. Layout of a file: u64 little-endian N, N bytes of JSON
// (padded with
// spaces), then the data area; each tensor's `data_offsets` [begin, end) are relative to it.
import { DTYPES, dtypeProblem, dtypeSize, isDType, numel, type DType } from './dtype.js';
import { rawTensor, type RawTensor } from './raw-tensor.js';

export interface Safetensors {
  /** Tensors by name, in name order. */
  tensors: Map<string, RawTensor>;
  /** The header's `__metadata__` ({} when absent). */
  metadata: Record<string, string>;
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('safetensors: this machine is big-endian; safetensors data is little-endian and is read as is');
}

/** The safetensors reference implementation refuses headers above 100 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range in the data area. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Byte offset of the data area in the file: 8 + N. */
  dataStart: number;
  /** Entries sorted by `begin`; they tile the data area exactly. */
  entries: TensorEntry[];
  /** The string -> string `__metadata__` map ({} when absent). */
  metadata: Record<string, string>;
}

/** Reads N from the first 8 bytes; `where` prefixes errors ("readSafetensors: FILE"). */
export function parseHeaderLength(first: Uint8Array, fileBytes: number, where: string): number {
  if (fileBytes < 8 || first.byteLength < 8) {
    throw new Error(
      `${where}: file is ${fileBytes} bytes, too short for the 8-byte header length (not a safetensors file?)`,
    );
  }
  const n = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileBytes - 8)) {
    throw new Error(
      `${where}: header length ${n} is beyond the file (${fileBytes} bytes): truncated, or not a safetensors file`,
    );
  }
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(`${where}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit of the format`);
  }
  return Number(n);
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Parses and validates the JSON header `json` (N bytes) of a file of `fileBytes` bytes. */
export function parseHeader(json: Uint8Array, fileBytes: number, where: string): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw new Error(`${where}: header is not valid UTF-8`);
  }
  if (!text.startsWith('{')) throw new Error(`${where}: header does not start with '{' (not a safetensors file?)`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(`${where}: header is not a JSON object`);

  const dataStart = 8 + json.byteLength,
    dataBytes = fileBytes - dataStart;
  const metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (
        typeof v !== 'object' ||
        v === null ||
        Array.isArray(v) ||
        !Object.values(v).every((s) => typeof s === 'string')
      ) {
        throw new Error(`${where}: __metadata__ must map strings to strings, got ${JSON.stringify(v)}`);
      }
      Object.assign(metadata, v);
      continue;
    }
    entries.push(parseEntry(name, v, dataBytes, `${where}: tensor '${name}'`));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  // The entries must tile [0, dataBytes): no overlap, no gap, nothing after the last one.
  let at = 0,
    prev: TensorEntry | undefined;
  for (const e of entries) {
    if (e.begin < at) {
      throw new Error(
        `${where}: tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}] and '${e.name}' ` +
          `[${e.begin}, ${e.end}] overlap`,
      );
    }
    if (e.begin > at) {
      throw new Error(
        `${where}: ${e.begin - at} bytes before tensor '${e.name}' (data_offsets [${e.begin}, ` +
          `${e.end}]) belong to no tensor; offsets must cover the data area without gaps`,
      );
    }
    at = e.end;
    prev = e;
  }
  if (at !== dataBytes) {
    throw new Error(
      `${where}: the data area has ${dataBytes} bytes but the tensors end at ${at}: ` +
        `${dataBytes - at} trailing bytes belong to no tensor`,
    );
  }
  return { dataStart, entries, metadata };
}

function parseEntry(name: string, v: unknown, dataBytes: number, where: string): TensorEntry {
  if (typeof v !== 'object' || v === null) throw new Error(`${where}: entry is ${JSON.stringify(v)}, not an object`);
  const { dtype, shape, data_offsets: off } = v as Record<string, unknown>;
  if (!isDType(dtype)) throw new Error(`${where}: dtype ${JSON.stringify(dtype)} is ${dtypeProblem(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new Error(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount) || off[0] > off[1]) {
    throw new Error(`${where}: data_offsets ${JSON.stringify(off)} is not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = off as [number, number];
  const bytes = numel(shape) * dtypeSize(dtype);
  if (bytes !== end - begin) {
    throw new Error(
      `${where}: shape [${shape.join(', ')}] of ${dtype} needs ${bytes} bytes but ` +
        `data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  if (end > dataBytes) {
    throw new Error(
      `${where}: data_offsets [${begin}, ${end}] reach past the end of the data area ` +
        `(${dataBytes} bytes): the file is truncated or its header is wrong`,
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** Order of tensors in the data area, as the safetensors library writes them: larger dtypes
 *  first (so every tensor is aligned to its element size), then by name. */
const WRITE_RANK: DType[] = ['U64', 'I64', 'F64', 'F32', 'U32', 'I32', 'BF16', 'F16', 'U16', 'I16', 'I8', 'U8', 'BOOL'];

/** Lays out `tensors` and encodes the header (8-byte length + JSON padded with spaces to a
 *  multiple of 8). Returns the bytes to write first and the entries in data-area order. */
export function encodeHeader(
  tensors: readonly { name: string; dtype: DType; shape: readonly number[] }[],
  metadata: Record<string, string>,
): { head: Uint8Array; entries: TensorEntry[] } {
  const order = [...tensors].sort(
    (a, b) =>
      WRITE_RANK.indexOf(a.dtype) - WRITE_RANK.indexOf(b.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  // Written by hand, not JSON.stringify(object): an object would move names like "0" first.
  const parts = [`"__metadata__":${JSON.stringify(metadata)}`];
  const entries: TensorEntry[] = [];
  let at = 0;
  for (const t of order) {
    const end = at + numel(t.shape) * dtypeSize(t.dtype);
    entries.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], begin: at, end });
    parts.push(
      `${JSON.stringify(t.name)}:${JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [at, end] })}`,
    );
    at = end;
  }
  const text = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(text.byteLength / 8) * 8;
  const head = new Uint8Array(8 + n).fill(0x20, 8 + text.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  head.set(text, 8);
  return { head, entries };
}

/** Parses a whole safetensors file held in memory (e.g. fetched in a browser). Tensors view
 *  `bytes` where aligned to their element size and copy otherwise. */
export function parseSafetensors(bytes: Uint8Array, label = 'memory'): Safetensors {
  const where = `parseSafetensors: ${label}`;
  const n = parseHeaderLength(bytes, bytes.byteLength, where);
  const { dataStart, entries, metadata } = parseHeader(bytes.subarray(8, 8 + n), bytes.byteLength, where);
  const tensors = new Map<string, RawTensor>();
  for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    let view = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    if (view.byteOffset % DTYPES[e.dtype].size !== 0) view = view.slice();
    tensors.set(e.name, rawTensor(e.name, e.dtype, e.shape, view, label));
  }
  return { tensors, metadata };
}
