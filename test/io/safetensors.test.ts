// safetensors reading and writing: fixtures written by the Python safetensors library, bit-exact
// round trips, integer and half dtypes, lazy reads, and every kind of corrupt file.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/io/safetensors.js';
import { ARCHS, bits, FIXTURES, joinFile, splitFile, tempDir, tensorBytes } from './helpers.js';

const LLAMA = path.join(FIXTURES, 'llama/policy/model.safetensors');

test('reads the transformers fixtures: names, dtypes, shapes and bytes as stored', () => {
  for (const arch of ARCHS) {
    for (const v of ['policy', 'policy-bf16']) {
      const file = path.join(FIXTURES, arch, v, 'model.safetensors');
      const raw = splitFile(fs.readFileSync(file));
      const { tensors, metadata } = readSafetensors(file);
      assert.deepEqual(metadata, { format: 'pt' });
      assert.deepEqual(
        [...tensors.keys()].sort(),
        Object.keys(raw.header)
          .filter((k) => k !== '__metadata__')
          .sort(),
      );
      for (const [name, t] of tensors) {
        assert.equal(t.dtype, raw.header[name].dtype);
        assert.deepEqual(t.shape, raw.header[name].shape);
        assert.deepEqual(
          new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
          tensorBytes(raw, name),
          name,
        );
      }
    }
  }
  // expected.safetensors: no __metadata__, F32 and I32 tensors
  const exp = readSafetensors(path.join(FIXTURES, 'llama/expected.safetensors'));
  assert.deepEqual(exp.metadata, {});
  const ids = exp.tensors.get('input_ids')!;
  assert.equal(ids.dtype, 'I32');
  assert.deepEqual(ids.shape, [4, 17]);
  assert.ok(ids.toInt32() === ids.data);
  assert.deepEqual([...ids.toFloat32()], [...ids.toInt32()]);
});

test('writes byte for byte what the Python safetensors library wrote (F32, BF16 from bits and from f32)', (t) => {
  const dir = tempDir(t);
  for (const arch of ARCHS) {
    const f32 = readSafetensors(path.join(FIXTURES, arch, 'policy/model.safetensors')).tensors;
    const bfFile = path.join(FIXTURES, arch, 'policy-bf16/model.safetensors');
    const out = path.join(dir, `${arch}.safetensors`);
    writeSafetensors(out, f32);
    assert.deepEqual(
      fs.readFileSync(out),
      fs.readFileSync(path.join(FIXTURES, arch, 'policy/model.safetensors')),
      arch,
    );
    writeSafetensors(out, readSafetensors(bfFile).tensors);
    assert.deepEqual(fs.readFileSync(out), fs.readFileSync(bfFile), `${arch} bf16 bits`);
    // torch's .to(bfloat16) rounds to nearest even: converting the f32 policy must give its bytes
    writeSafetensors(
      out,
      [...f32.values()].map((x) => ({ name: x.name, dtype: 'BF16' as const, shape: x.shape, data: x.toFloat32() })),
    );
    assert.deepEqual(fs.readFileSync(out), fs.readFileSync(bfFile), `${arch} f32 -> bf16`);
  }
});

test('float32 write/read round trip is bit-exact (NaN payloads, -0, subnormals, infinities)', (t) => {
  const file = path.join(tempDir(t), 'x.safetensors');
  const a = new Float32Array(1000);
  const u = bits(a);
  let seed = 7;
  for (let i = 0; i < u.length; i++) u[i] = seed = (Math.imul(seed, 747796405) + 2891336453) >>> 0;
  u.set([0x80000000, 0x00000001, 0x7f800000, 0xff800000, 0x7fc00001, 0xffbfffff], 0);
  const b = Float32Array.from([1.5, -2]);
  writeSafetensors(
    file,
    [
      { name: 'a', dtype: 'F32', shape: [10, 100], data: a },
      { name: 'b', dtype: 'F32', shape: [2], data: b },
      { name: 'empty', dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
    ],
    { step: '3' },
  );
  const raw = splitFile(fs.readFileSync(file));
  assert.deepEqual(raw.header.__metadata__, { format: 'pt', step: '3' });
  assert.equal((fs.statSync(file).size - raw.data.byteLength) % 8, 0, 'header padded to 8 bytes');
  const r = readSafetensors(file);
  assert.deepEqual(bits(r.tensors.get('a')!.toFloat32()), u);
  assert.deepEqual([...r.tensors.get('b')!.toFloat32()], [1.5, -2]);
  assert.deepEqual(r.tensors.get('empty')!.shape, [0, 3]);
  assert.deepEqual([...r.tensors.keys()], ['a', 'b', 'empty']);
});

test('integer, F16 and F64 tensors convert as documented; I64 is range-checked', (t) => {
  const dir = tempDir(t);
  const i64 = new BigInt64Array([1n, -5n, 2147483647n, -2147483648n]);
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000]);
  const f64 = new Float64Array([1.5, 1e-50, 1 / 3]);
  const data = new Uint8Array([
    ...new Uint8Array(i64.buffer),
    ...new Uint8Array(f64.buffer),
    ...new Uint8Array(f16.buffer),
    1,
    0,
  ]);
  const header = {
    ids: { dtype: 'I64', shape: [4], data_offsets: [0, 32] },
    d: { dtype: 'F64', shape: [3], data_offsets: [32, 56] },
    h: { dtype: 'F16', shape: [2, 3], data_offsets: [56, 68] },
    m: { dtype: 'BOOL', shape: [2], data_offsets: [68, 70] },
  };
  const file = path.join(dir, 'ints.safetensors');
  fs.writeFileSync(file, joinFile(header, data));
  const { tensors } = readSafetensors(file);
  assert.deepEqual([...tensors.get('ids')!.toInt32()], [1, -5, 2147483647, -2147483648]);
  assert.deepEqual([...tensors.get('ids')!.toFloat32()], [1, -5, 2147483648, -2147483648]);
  assert.deepEqual([...tensors.get('d')!.toFloat32()], [1.5, 0, Math.fround(1 / 3)]);
  assert.deepEqual([...tensors.get('h')!.toFloat32()], [1, -2, 65504, 2 ** -24, Infinity, -0]);
  assert.deepEqual([...tensors.get('m')!.toInt32()], [1, 0]);
  assert.throws(() => tensors.get('h')!.toInt32(), /toInt32: tensor 'h' \(F16 \[2, 3\]\).*not an integer dtype/);
  // one value past int32
  const big = new BigInt64Array([3n, 2147483648n]);
  fs.writeFileSync(
    file,
    joinFile({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(big.buffer)),
  );
  assert.throws(
    () => readSafetensors(file).tensors.get('ids')!.toInt32(),
    (e: Error) =>
      e.message.includes("tensor 'ids'") &&
      e.message.includes(file) &&
      /2147483648 at index 1, outside the int32 range/.test(e.message),
  );
});

test('lazy reads give the same values, read nothing up front, and notice a changed file', (t) => {
  const dir = tempDir(t),
    file = path.join(dir, 'm.safetensors');
  fs.copyFileSync(LLAMA, file);
  const eager = readSafetensors(file).tensors,
    lazy = readSafetensors(file, { lazy: true }).tensors;
  const name = 'model.layers.1.mlp.down_proj.weight';
  assert.deepEqual(bits(lazy.get(name)!.toFloat32()), bits(eager.get(name)!.toFloat32()));
  assert.equal(lazy.get(name)!.byteLength, 64 * 160 * 4);
  const header = readSafetensorsHeader(file);
  assert.equal(header.entries.length, eager.size);
  fs.writeFileSync(file, fs.readFileSync(file)); // same bytes, new mtime
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
  assert.throws(() => lazy.get('lm_head.weight')!.data, /changed since its header was read/);
  const later = readSafetensors(file, { lazy: true }).tensors;
  fs.rmSync(file);
  assert.throws(() => later.get('lm_head.weight')!.toFloat32(), /tensor 'lm_head.weight': file does not exist/);
});

test('parseSafetensors reads a file held in memory', () => {
  const bytes = new Uint8Array(fs.readFileSync(LLAMA));
  const fromMemory = parseSafetensors(bytes, 'llama').tensors,
    fromFile = readSafetensors(LLAMA).tensors;
  for (const [name, x] of fromFile) assert.deepEqual(bits(fromMemory.get(name)!.toFloat32()), bits(x.toFloat32()));
});

/** Corrupts a copy of the llama policy file and returns the error message reading it gives. */
function corrupt(dir: string, edit: (f: { header: Record<string, any>; data: Uint8Array }) => Uint8Array): string {
  const file = path.join(dir, 'bad.safetensors');
  const f = splitFile(new Uint8Array(fs.readFileSync(LLAMA)));
  fs.writeFileSync(file, edit({ header: structuredClone(f.header), data: f.data }));
  try {
    readSafetensors(file);
  } catch (e) {
    const msg = (e as Error).message;
    assert.ok(msg.startsWith(`readSafetensors: ${file}: `), msg);
    return msg;
  }
  assert.fail('reading a corrupt file did not throw');
}

test('corrupt or unsupported files are refused with errors naming the file and tensor', (t) => {
  const dir = tempDir(t);
  const Q = 'model.layers.0.self_attn.q_proj.weight';
  const cases: [string, (f: { header: Record<string, any>; data: Uint8Array }) => Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', () => new Uint8Array(5), /file is 5 bytes, too short/],
    [
      'header length beyond the file',
      (f) => joinFile(f.header, f.data, 1n << 40n),
      /header length 1099511627776 is beyond the file/,
    ],
    ['invalid JSON', (f) => joinFile('{"a": [1, 2', f.data), /header is not valid JSON/],
    ['not JSON at all', (f) => joinFile('PK\u0003\u0004', f.data), /does not start with '\{'/],
    [
      'float8',
      (f) => {
        f.header[Q].dtype = 'F8_E4M3';
        return joinFile(f.header, f.data);
      },
      new RegExp(`tensor '${Q}': dtype "F8_E4M3" is unsupported \\(quantized`),
    ],
    [
      'int4',
      (f) => {
        f.header[Q].dtype = 'I4';
        return joinFile(f.header, f.data);
      },
      /dtype "I4" is unsupported/,
    ],
    [
      'unknown dtype',
      (f) => {
        f.header[Q].dtype = 'quantized';
        return joinFile(f.header, f.data);
      },
      /dtype "quantized" is unknown \(supported: BOOL/,
    ],
    [
      'shape does not match the byte range',
      (f) => {
        f.header[Q].shape = [64, 63];
        return joinFile(f.header, f.data);
      },
      new RegExp(
        `tensor '${Q}': shape \\[64, 63\\] of F32 needs 16128 bytes but data_offsets \\[\\d+, \\d+\\] span 16384`,
      ),
    ],
    [
      'negative dim',
      (f) => {
        f.header[Q].shape = [-64, -64];
        return joinFile(f.header, f.data);
      },
      /shape \[-64,-64\] is not a list of non-negative integers/,
    ],
    [
      'offsets outside the data area',
      (f) => {
        const n = f.data.byteLength;
        f.header[Q].data_offsets = [n, n + 16384];
        return joinFile(f.header, f.data);
      },
      new RegExp(`tensor '${Q}': data_offsets \\[\\d+, \\d+\\] reach past the end of the data area \\(607488 bytes\\)`),
    ],
    [
      'overlapping tensors',
      (f) => {
        const [b, e] = f.header[Q].data_offsets;
        f.header[Q].data_offsets = [b - 4, e - 4];
        return joinFile(f.header, f.data);
      },
      new RegExp(
        `tensors 'model.layers.0.self_attn.o_proj.weight' \\[\\d+, \\d+\\] and '${Q}' \\[\\d+, \\d+\\] overlap`,
      ),
    ],
    [
      'a gap (tensor missing from the header)',
      (f) => {
        delete f.header[Q];
        return joinFile(f.header, f.data);
      },
      /16384 bytes before tensor 'model.layers.0.self_attn.v_proj.weight' .* belong to no tensor/,
    ],
    [
      'truncated data area',
      (f) => joinFile(f.header, f.data.subarray(0, f.data.byteLength - 100)),
      new RegExp(
        /tensor 'model.norm.weight': data_offsets \[607232, 607488\] reach past the end of the data area /.source +
          /\(607388 bytes\): the file is truncated/.source,
      ),
    ],
    [
      'trailing bytes',
      (f) => joinFile(f.header, new Uint8Array([...f.data, 0, 0, 0, 0])),
      /the data area has 607492 bytes but the tensors end at 607488/,
    ],
    [
      'bad __metadata__',
      (f) => {
        f.header.__metadata__ = { format: 1 };
        return joinFile(f.header, f.data);
      },
      /__metadata__ must map strings to strings/,
    ],
    [
      'bad data_offsets',
      (f) => {
        f.header[Q].data_offsets = [10];
        return joinFile(f.header, f.data);
      },
      new RegExp(`tensor '${Q}': data_offsets \\[10\\] is not \\[begin, end\\]`),
    ],
  ];
  for (const [what, edit, want] of cases) {
    const msg = corrupt(dir, edit);
    if (process.env.SHOW_ERRORS) console.log(`${what}: ${msg}`);
    assert.match(msg, want, what);
  }
  assert.throws(
    () => readSafetensors(path.join(dir, 'nope.safetensors')),
    /readSafetensors: .*nope.safetensors: file does not exist/,
  );
});

test('writeSafetensors refuses bad input with the tensor named', (t) => {
  const file = path.join(tempDir(t), 'w.safetensors');
  const w = (x: object) => () => writeSafetensors(file, [x as never]);
  assert.throws(
    w({ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }),
    /tensor 'x' of shape \[3\] needs 3 values, got 2/,
  );
  assert.throws(
    w({ name: 'x', dtype: 'I32', shape: [2], data: new Float32Array(2) }),
    /tensor 'x' is I32, which needs a Int32Array; got a Float32Array/,
  );
  assert.throws(
    w({ name: 'x', dtype: 'F8_E4M3', shape: [2], data: new Uint8Array(2) }),
    /dtype "F8_E4M3" is unsupported/,
  );
  assert.throws(
    () =>
      writeSafetensors(file, [
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      ]),
    /tensor name "x" is empty, reserved or repeated/,
  );
  assert.ok(!fs.existsSync(file));
});
