// RawTensor's chunked reads (float32Chunks / bf16Chunks, what model loading uses): equal bit for bit
// to the whole-tensor toFloat32() / toBf16() for every float dtype, odd sizes, tensors at unaligned
// file offsets, chunk sizes that do not divide the tensor, lazy (read piecewise from the file) and
// eager reads, and reads nested inside another read's callback.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CHUNK_ELEMENTS, type RawTensor } from '../../src/io/raw-tensor.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { joinFile, tempDir } from './helpers.js';

/** A safetensors file whose tensors follow each other unpadded: BF16 [7] ends at byte 14, so F32 [13] starts unaligned. */
function oddFile(dir: string): string {
  const rnd = (n: number, bytes: number): Uint8Array => {
    const out = new Uint8Array(n * bytes);
    let x = 12345 + n;
    for (let i = 0; i < out.length; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
    return out;
  };
  const parts: [string, string, number[], Uint8Array][] = [
    ['a', 'BF16', [7], rnd(7, 2)],
    ['b', 'F32', [13], rnd(13, 4)],
    ['c', 'F64', [5], rnd(5, 8)],
    ['d', 'F16', [3, 333], rnd(999, 2)],
    ['e', 'BF16', [CHUNK_ELEMENTS + 3], rnd(CHUNK_ELEMENTS + 3, 2)],
    ['f', 'F32', [0], new Uint8Array(0)],
  ];
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, dtype, shape, bytes] of parts) {
    header[name] = { dtype, shape, data_offsets: [at, at + bytes.length] };
    at += bytes.length;
  }
  const file = path.join(dir, 'odd.safetensors');
  fs.writeFileSync(file, joinFile(header, Buffer.concat(parts.map((p) => p[3]))));
  return file;
}

/** The chunks of one read, concatenated, checking that offsets run 0, chunk, 2 chunk, ... */
function gather<T extends Float32Array | Uint16Array>(
  rt: RawTensor,
  kind: 'f32' | 'bf16',
  chunk: number | undefined,
  make: (n: number) => T,
): T {
  const n = rt.shape.reduce((a, b) => a * b, 1);
  const out = make(n);
  let next = 0;
  const take = (v: Float32Array | Uint16Array, at: number): void => {
    assert.equal(at, next, `${rt.name}: chunk at ${at}, expected ${next}`);
    assert.ok(v.length > 0 && v.length <= (chunk ?? CHUNK_ELEMENTS), `${rt.name}: chunk of ${v.length}`);
    out.set(v as never, at);
    next += v.length;
  };
  if (kind === 'f32') rt.float32Chunks(take, chunk);
  else rt.bf16Chunks(take, chunk);
  assert.equal(next, n, `${rt.name}: chunks cover ${next} of ${n} elements`);
  return out;
}

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

test('chunked reads equal whole-tensor reads, lazy and eager, for every chunk size', (t) => {
  const file = oddFile(tempDir(t));
  const whole = readSafetensors(file).tensors;
  for (const lazy of [false, true]) {
    const { tensors } = readSafetensors(file, { lazy });
    for (const [name, rt] of tensors) {
      const f32 = whole.get(name)!.toFloat32(),
        bf16 = whole.get(name)!.toBf16();
      for (const chunk of [1, 2, 3, 7, 64, 1000, undefined]) {
        if (chunk !== undefined && chunk < 64 && f32.length > 10000) continue; // a million callbacks: slow, nothing new
        const how = `${name} (${rt.dtype} [${rt.shape}]), lazy ${lazy}, chunk ${chunk ?? 'default'}`;
        assert.deepEqual(bitsOf(gather(rt, 'f32', chunk, (n) => new Float32Array(n))), bitsOf(f32), how);
        assert.deepEqual(
          gather(rt, 'bf16', chunk, (n) => new Uint16Array(n)),
          bf16,
          how,
        );
      }
    }
  }
});

test('the whole-tensor reads the chunks are compared with are the values stored', (t) => {
  const { tensors } = readSafetensors(oddFile(tempDir(t)));
  const a = tensors.get('a')!,
    b = tensors.get('b')!,
    c = tensors.get('c')!;
  // bf16 bits are the top half of the float32
  assert.deepEqual(
    bitsOf(a.toFloat32()),
    Uint32Array.from(a.data as Uint16Array, (h) => (h << 16) >>> 0),
  );
  // F32 at an unaligned file offset: its bytes as stored
  assert.deepEqual(bitsOf(b.toFloat32()), new Uint32Array((b.data as Float32Array).slice().buffer));
  // F64 rounds to nearest float32
  assert.deepEqual([...c.toFloat32()], [...(c.data as Float64Array)].map(Math.fround));
});

test('a chunked read inside another chunked read keeps both values intact (scratch is not shared)', (t) => {
  const { tensors } = readSafetensors(oddFile(tempDir(t)), { lazy: true });
  const d = tensors.get('d')!,
    b = tensors.get('b')!;
  const want = d.toFloat32();
  const got = new Float32Array(want.length);
  d.float32Chunks((v, at) => {
    const inner = gather(b, 'f32', 4, (n) => new Float32Array(n));
    assert.deepEqual(bitsOf(inner), bitsOf(b.toFloat32()));
    got.set(v, at); // after the nested read: its chunks must not have overwritten v
  }, 100);
  assert.deepEqual(bitsOf(got), bitsOf(want));
});

test('a lazy chunked read of a file changed since its header was read fails, naming the tensor', (t) => {
  const file = oddFile(tempDir(t));
  const { tensors } = readSafetensors(file, { lazy: true });
  fs.appendFileSync(file, new Uint8Array(8));
  assert.throws(
    () => tensors.get('d')!.float32Chunks(() => {}),
    /tensor 'd'.*the file changed since its header was read/,
  );
  assert.throws(() => tensors.get('a')!.float32Chunks(() => {}, 0), /chunk must be a positive integer.*'a'/);
});
