// Atomic writes: a writer that throws half-way leaves neither a partial file nor a temporary.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { replaceDirAtomic, writeAll, writeFileAtomic, writeFileAtomicWith } from '../../src/io/atomic.js';
import { loadHfFolder, saveHfFolder } from '../../src/io/hf.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { FIXTURES, tempDir } from './helpers.js';

test('writeFileAtomicWith: a writer that throws mid-way leaves the old file and no temporary', (t) => {
  const dir = tempDir(t),
    file = path.join(dir, 'state.json');
  assert.throws(
    () =>
      writeFileAtomicWith(file, (fd) => {
        writeAll(fd, Buffer.from('{"partial": '));
        throw new Error('disk on fire');
      }),
    /disk on fire/,
  );
  assert.deepEqual(fs.readdirSync(dir), [], 'no file, no temporary');
  writeFileAtomic(file, '{"step": 1}');
  assert.throws(
    () =>
      writeFileAtomicWith(file, (fd) => {
        writeAll(fd, new Uint8Array(1 << 20));
        throw new Error('interrupted');
      }),
    /interrupted/,
  );
  assert.equal(fs.readFileSync(file, 'utf8'), '{"step": 1}');
  assert.deepEqual(fs.readdirSync(dir), ['state.json']);
  writeFileAtomic(file, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...fs.readFileSync(file)], [1, 2, 3]);
});

test('writeSafetensors failing on its second tensor keeps the previous file whole', (t) => {
  const dir = tempDir(t),
    file = path.join(dir, 'w.safetensors');
  const good = { name: 'a', dtype: 'F32' as const, shape: [1000], data: new Float32Array(1000).fill(1) };
  writeSafetensors(file, [good]);
  const before = fs.readFileSync(file);
  // the header is written before the data, so this fails after bytes have gone to the temporary
  assert.throws(
    () => writeSafetensors(file, [good, { name: 'b', dtype: 'F32', shape: [10], data: new Float32Array(9) }]),
    /tensor 'b' of shape \[10\] needs 10 values, got 9/,
  );
  assert.deepEqual(fs.readFileSync(file), before);
  assert.deepEqual(fs.readdirSync(dir), ['w.safetensors']);
});

test('replaceDirAtomic swaps a whole folder, or leaves it untouched when filling throws', (t) => {
  const base = tempDir(t),
    dir = path.join(base, 'ckpt');
  replaceDirAtomic(dir, (tmp) => {
    assert.equal(tmp, `${dir}.tmp-${process.pid}`);
    fs.writeFileSync(path.join(tmp, 'a.txt'), 'one');
    fs.writeFileSync(path.join(tmp, 'old.txt'), 'stale');
  });
  replaceDirAtomic(dir, (tmp) => fs.writeFileSync(path.join(tmp, 'a.txt'), 'two'));
  assert.deepEqual(fs.readdirSync(dir), ['a.txt'], 'files of the old version are gone');
  assert.equal(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'two');
  assert.throws(
    () =>
      replaceDirAtomic(dir, (tmp) => {
        fs.writeFileSync(path.join(tmp, 'a.txt'), 'three');
        throw new Error('crash while saving');
      }),
    /crash while saving/,
  );
  assert.equal(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'two');
  assert.deepEqual(fs.readdirSync(base), ['ckpt'], 'no .tmp- or .old- folders left');
  fs.writeFileSync(path.join(base, 'file'), '');
  assert.throws(() => replaceDirAtomic(path.join(base, 'file'), () => {}), /exists and is not a folder/);
});

test('saveHfFolder failing in its last shard leaves the previous checkpoint folder intact', (t) => {
  const base = tempDir(t),
    dir = path.join(base, 'model');
  const src = loadHfFolder(path.join(FIXTURES, 'gpt2/policy'));
  saveHfFolder(dir, { config: src.config, tensors: src.tensors });
  const before = fs.readFileSync(path.join(dir, 'model.safetensors'));
  const broken = [
    ...src.tensors.values(),
    { name: 'zz', dtype: 'F32' as const, shape: [4], data: new Float32Array(3) },
  ];
  assert.throws(
    () => saveHfFolder(dir, { config: { ...src.config, n_layer: 99 }, tensors: broken }, { maxShardBytes: 50_000 }),
    /tensor 'zz'/,
  );
  assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'model.safetensors']);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'model.safetensors')), before);
  assert.equal(loadHfFolder(dir).config.n_layer, 2);
  assert.deepEqual(fs.readdirSync(base), ['model']);
});
