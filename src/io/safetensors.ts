// Reading and writing safetensors files. Each tensor gets its own buffer (read eagerly, or on first
// use with `lazy`), so a multi-GB file never needs twice its size in memory; writes stream tensor
// by tensor into a temporary file that is renamed into place (atomic.ts).
import * as fs from 'node:fs';
import { writeAll, writeFileAtomicWith } from './atomic.js';
import { bytesOf, DTYPES, dtypeProblem, isDType, numel, type DType, type TypedData } from './dtype.js';
import { f32ToBf16, f32ToF16 } from './half.js';
import { rawTensor, type RangeSource, type RawTensor } from './raw-tensor.js';
import {
  encodeHeader,
  parseHeader,
  parseHeaderLength,
  type Safetensors,
  type SafetensorsHeader,
} from './safetensors-format.js';

export { parseSafetensors, type Safetensors } from './safetensors-format.js';

export interface ReadOptions {
  /** Read each tensor's bytes only when its `data` or `toFloat32()` is first used (default false).
   *  The file must not change meanwhile; a changed size or mtime is reported as an error. */
  lazy?: boolean;
}

/** What writeSafetensors takes; a RawTensor is one. */
export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Values in the dtype's own typed array (F16/BF16: Uint16Array of bits), or a Float32Array for
   *  F16/BF16/F64 (converted, round to nearest even) or a Float64Array for F32 (rounded); or a
   *  function giving them, called when the tensor is written (one tensor's host copy at a time). */
  data: TypedData | (() => TypedData);
}

/** Reads `len` bytes at `pos` into a new buffer of their own (so typed views are aligned). */
function readAt(fd: number, pos: number, len: number, where: string): Uint8Array {
  const slow = Buffer.allocUnsafeSlow(len); // its own ArrayBuffer, not zero-filled: every byte is read below
  return readInto(fd, new Uint8Array(slow.buffer, slow.byteOffset, len), pos, where);
}

/** Fills `out` with the bytes at `pos` of the file. */
function readInto(fd: number, out: Uint8Array, pos: number, where: string): Uint8Array {
  const len = out.byteLength,
    CHUNK = 1 << 30;
  for (let off = 0; off < len;) {
    const got = fs.readSync(fd, out, off, Math.min(CHUNK, len - off), pos + off);
    if (got === 0) throw new Error(`${where}: file ended at byte ${pos + off} while reading ${len} bytes at ${pos}`);
    off += got;
  }
  return out;
}

/** Header only: tensor names, dtypes, shapes and byte ranges, reading no tensor data. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const where = `readSafetensors: ${file}`;
  const fd = openFile(file, where);
  try {
    return headerOf(fd, fs.fstatSync(fd).size, where);
  } finally {
    fs.closeSync(fd);
  }
}

function openFile(file: string, where: string): number {
  try {
    const fd = fs.openSync(file, 'r');
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd);
      throw new Error(`${where}: not a regular file`);
    }
    return fd;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${where}: file does not exist`);
    throw e;
  }
}

function headerOf(fd: number, size: number, where: string): SafetensorsHeader {
  const n = parseHeaderLength(readAt(fd, 0, Math.min(8, size), where), size, where);
  return parseHeader(readAt(fd, 8, n, where), size, where);
}

/** Reads a safetensors file, validating its header strictly (errors name the file and tensor). */
export function readSafetensors(file: string, opts: ReadOptions = {}): Safetensors {
  const where = `readSafetensors: ${file}`;
  const fd = openFile(file, where);
  try {
    const stat = fs.fstatSync(fd);
    const { dataStart, entries, metadata } = headerOf(fd, stat.size, where);
    const tensors = new Map<string, RawTensor>();
    for (const e of [...entries].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const pos = dataStart + e.begin,
        len = e.end - e.begin;
      const at = `${where}: tensor '${e.name}'`;
      const source = opts.lazy ? () => readLater(file, stat, pos, len, at) : readAt(fd, pos, len, at);
      const ranges = opts.lazy ? rangesLater(file, stat, pos, len, at) : undefined;
      tensors.set(e.name, rawTensor(e.name, e.dtype, e.shape, source, file, ranges));
    }
    return { tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

function readLater(file: string, was: fs.Stats, pos: number, len: number, where: string): Uint8Array {
  return withUnchanged(file, was, where, (fd) => readAt(fd, pos, len, where));
}

/** Piecewise reads of the `len` bytes at `pos` (RawTensor's chunked reads), the file opened once per pass. */
function rangesLater(file: string, was: fs.Stats, pos: number, len: number, where: string): RangeSource {
  return (use) =>
    withUnchanged(file, was, where, (fd) =>
      use((dst, at) => {
        if (at < 0 || at + dst.byteLength > len)
          throw new Error(`${where}: bytes [${at}, ${at + dst.byteLength}) are outside the tensor's ${len}`);
        readInto(fd, dst, pos + at, where);
      }),
    );
}

/** Runs `fn` on the file opened again, after checking that it has not changed since `was`. */
function withUnchanged<T>(file: string, was: fs.Stats, where: string, fn: (fd: number) => T): T {
  const fd = openFile(file, where);
  try {
    const now = fs.fstatSync(fd);
    if (now.size !== was.size || now.mtimeMs !== was.mtimeMs) {
      throw new Error(`${where}: the file changed since its header was read (lazy read); read it again`);
    }
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The bytes to store for `t`, converting float32 data to a narrower float dtype if asked. */
function encodeData(t: TensorToWrite, where: string): Uint8Array {
  const d = typeof t.data === 'function' ? t.data() : t.data,
    want = DTYPES[t.dtype].array;
  let out: TypedData | undefined;
  if (d instanceof want) out = d;
  else if (d instanceof Float32Array && t.dtype === 'BF16') out = f32ToBf16(d);
  else if (d instanceof Float32Array && t.dtype === 'F16') out = f32ToF16(d);
  else if (d instanceof Float32Array && t.dtype === 'F64') out = Float64Array.from(d);
  else if (d instanceof Float64Array && t.dtype === 'F32') out = Float32Array.from(d);
  if (!out) {
    throw new Error(
      `${where}: tensor '${t.name}' is ${t.dtype}, which needs a ${want.name}` +
        `${t.dtype === 'BF16' || t.dtype === 'F16' ? ' (raw bits) or a Float32Array' : ''}; ` +
        `got a ${d.constructor.name}`,
    );
  }
  if (out.length !== numel(t.shape)) {
    throw new Error(
      `${where}: tensor '${t.name}' of shape [${t.shape.join(', ')}] needs ${numel(t.shape)} ` +
        `values, got ${out.length}`,
    );
  }
  return bytesOf(out);
}

/** Writes `tensors` to `file` atomically, in the layout of the safetensors library (header keys
 *  in data order: larger dtypes first, then by name; padded to 8 bytes), with `__metadata__`
 *  {format: 'pt', ...metadata}. Float32 data written as F32 round-trips bit-exactly. */
export function writeSafetensors(
  file: string,
  tensors: Iterable<TensorToWrite> | ReadonlyMap<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  const where = `writeSafetensors: ${file}`;
  const isMap = typeof (tensors as ReadonlyMap<string, TensorToWrite>).get === 'function';
  const list: TensorToWrite[] = isMap
    ? [...(tensors as ReadonlyMap<string, TensorToWrite>).values()]
    : [...(tensors as Iterable<TensorToWrite>)];
  const byName = new Map<string, TensorToWrite>();
  for (const t of list) {
    if (!t.name || t.name === '__metadata__' || byName.has(t.name)) {
      throw new Error(`${where}: tensor name ${JSON.stringify(t.name)} is empty, reserved or repeated`);
    }
    if (!isDType(t.dtype as string))
      throw new Error(`${where}: tensor '${t.name}': dtype ${JSON.stringify(t.dtype)} is ${dtypeProblem(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(
        `${where}: tensor '${t.name}': shape [${t.shape.join(', ')}] is not a list of non-negative integers`,
      );
    }
    byName.set(t.name, t);
  }
  const { head, entries } = encodeHeader(list, { format: 'pt', ...metadata });
  writeFileAtomicWith(file, (fd) => {
    writeAll(fd, head);
    for (const e of entries) writeAll(fd, encodeData(byName.get(e.name)!, where));
  });
}
