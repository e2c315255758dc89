// A minimal safetensors reader for tests (I32 and F32 tensors): 8-byte little-endian header length,
// JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
import { readFileSync } from 'node:fs';

export interface Tensor {
  dtype: string;
  shape: number[];
  data: Int32Array | Float32Array;
}

export function readSafetensors(path: string, names: string[]): Record<string, Tensor> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out: Record<string, Tensor> = {};
  for (const name of names) {
    const h = header[name];
    if (!h) throw new Error(`readSafetensors: no tensor '${name}' in ${path}`);
    const [a, b] = h.data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    const copy = new Uint8Array(bytes).buffer; // aligned copy
    if (h.dtype === 'I32') out[name] = { dtype: h.dtype, shape: h.shape, data: new Int32Array(copy) };
    else if (h.dtype === 'F32') out[name] = { dtype: h.dtype, shape: h.shape, data: new Float32Array(copy) };
    else throw new Error(`readSafetensors: dtype ${h.dtype} of '${name}' not handled here`);
  }
  return out;
}
