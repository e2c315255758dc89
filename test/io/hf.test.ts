// Hugging Face model folders: every fixture model (f32 and bf16) against its config.json,
// sharded save and load, and the errors for folders tsdpo cannot load.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadHfFolder, saveHfFolder } from '../../src/io/hf.js';
import { ARCHS, bits, expectedShapes, FIXTURES, splitFile, tempDir } from './helpers.js';

test('loads every fixture model: names, shapes from config.json, dtypes, side files', () => {
  for (const arch of ARCHS) {
    for (const v of ['policy', 'reference', 'policy-bf16']) {
      const dir = path.join(FIXTURES, arch, v);
      const m = loadHfFolder(dir);
      const want = expectedShapes(m.config);
      assert.deepEqual([...m.tensors.keys()].sort(), [...want.keys()].sort(), `${arch}/${v} names`);
      for (const [name, t] of m.tensors) {
        assert.deepEqual(t.shape, want.get(name), `${arch}/${v} ${name}`);
        assert.equal(t.dtype, v === 'policy-bf16' ? 'BF16' : 'F32');
      }
      assert.deepEqual(m.files, [path.join(dir, 'model.safetensors')]);
      assert.equal(m.generationConfig?.eos_token_id, 2);
      assert.equal(m.tokenizerConfig, undefined);
    }
  }
});

test('bf16 weights read as f32 lie within bf16 precision of the f32 policy', () => {
  for (const arch of ARCHS) {
    const f32 = loadHfFolder(path.join(FIXTURES, arch, 'policy')).tensors;
    const bf = loadHfFolder(path.join(FIXTURES, arch, 'policy-bf16')).tensors;
    for (const [name, t] of bf) {
      const a = t.toFloat32(),
        b = f32.get(name)!.toFloat32();
      // round to nearest: |error| <= half an ulp <= 2^-8 |x| for 8 significant bits
      const bad = a.findIndex((x, i) => !(Math.abs(x - b[i]) <= Math.abs(b[i]) * 2 ** -8));
      assert.equal(bad, -1, `${arch} ${name}[${bad}]: ${a[bad]} vs ${b[bad]}`);
      const worst = a.reduce((w, x, i) => Math.max(w, Math.abs(x - b[i])), 0);
      if (name.endsWith('proj.weight')) assert.ok(worst > 0, 'bf16 actually differs from f32');
    }
  }
});

test('sharded save and load round trip (tiny shard size), index as transformers writes it', (t) => {
  const src = loadHfFolder(path.join(FIXTURES, 'llama/policy'));
  const dir = path.join(tempDir(t), 'out');
  const max = 100_000;
  const files = saveHfFolder(
    dir,
    { config: src.config, tensors: src.tensors, generationConfig: src.generationConfig },
    { maxShardBytes: max },
  );
  const n = files.length;
  assert.ok(n > 3, `${n} shards`);
  files.forEach((f, i) =>
    assert.equal(f, `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`),
  );
  assert.ok(!fs.existsSync(path.join(dir, 'model.safetensors')));
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
  let total = 0;
  for (const [name, x] of src.tensors)
    ((total += x.byteLength), assert.ok(files.includes(index.weight_map[name]), name));
  assert.equal(index.metadata.total_size, total);
  assert.deepEqual(Object.keys(index.weight_map), Object.keys(index.weight_map).sort());
  for (const f of files) {
    // every shard within the limit unless it holds one bigger tensor
    const raw = splitFile(fs.readFileSync(path.join(dir, f)));
    const names = Object.keys(raw.header).filter((k) => k !== '__metadata__');
    assert.ok(raw.data.byteLength <= max || names.length === 1, f);
    for (const name of names) assert.equal(index.weight_map[name], f);
  }
  const back = loadHfFolder(dir);
  assert.deepEqual(back.config, src.config);
  assert.deepEqual(back.generationConfig, src.generationConfig);
  assert.deepEqual(
    back.files,
    files.map((f) => path.join(dir, f)),
  );
  assert.equal(back.tensors.size, src.tensors.size);
  for (const [name, x] of src.tensors)
    assert.deepEqual(bits(back.tensors.get(name)!.toFloat32()), bits(x.toFloat32()), name);

  // saving again into the same folder replaces it whole: no shard files of the old save remain
  saveHfFolder(dir, {
    config: src.config,
    tensors: src.tensors,
    tokenizerConfig: { model_max_length: 128 },
    specialTokensMap: { eos_token: '</s>' },
    extraFiles: { 'tokenizer.json': '{}' },
  });
  assert.deepEqual(fs.readdirSync(dir).sort(), [
    'config.json',
    'model.safetensors',
    'special_tokens_map.json',
    'tokenizer.json',
    'tokenizer_config.json',
  ]);
  assert.deepEqual(
    fs.readFileSync(path.join(dir, 'model.safetensors')),
    fs.readFileSync(path.join(FIXTURES, 'llama/policy/model.safetensors')),
  );
  const again = loadHfFolder(dir);
  assert.deepEqual(again.tokenizerConfig, { model_max_length: 128 });
  assert.deepEqual(again.specialTokensMap, { eos_token: '</s>' });
  assert.equal(fs.readdirSync(path.dirname(dir)).length, 1, 'no temporary folders left');
});

test('shards and index must agree', (t) => {
  const src = loadHfFolder(path.join(FIXTURES, 'qwen3/policy'));
  const base = tempDir(t);
  const fresh = (name: string) => {
    const dir = path.join(base, name);
    const files = saveHfFolder(dir, { config: src.config, tensors: src.tensors }, { maxShardBytes: 150_000 });
    return { dir, files, indexFile: path.join(dir, 'model.safetensors.index.json') };
  };
  const edit = (file: string, f: (index: any) => void) => {
    const index = JSON.parse(fs.readFileSync(file, 'utf8'));
    f(index);
    fs.writeFileSync(file, JSON.stringify(index));
  };
  let c = fresh('missing-shard');
  const [first, second] = c.files,
    last = c.files[c.files.length - 1];
  assert.ok(c.files.length >= 3);
  fs.rmSync(path.join(c.dir, second));
  assert.throws(
    () => loadHfFolder(c.dir),
    new RegExp(`shard ${second} \\(holding \\d+ tensors, e.g. '.*'\\) is missing from`),
  );
  c = fresh('wrong-shard'); // model.norm.weight is last, in the last shard
  edit(c.indexFile, (ix) => {
    ix.weight_map['model.norm.weight'] = first;
  });
  assert.throws(
    () => loadHfFolder(c.dir),
    new RegExp(`the index places 1 tensors in ${first} that it does not hold, e.g. 'model.norm.weight'`),
  );
  c = fresh('unlisted');
  edit(c.indexFile, (ix) => {
    delete ix.weight_map['model.norm.weight'];
  });
  assert.throws(
    () => loadHfFolder(c.dir),
    new RegExp(`shard ${last} holds tensor 'model.norm.weight', which the index does not list`),
  );
  c = fresh('extra');
  edit(c.indexFile, (ix) => {
    ix.weight_map['lm_head.weight'] = last;
  });
  assert.throws(
    () => loadHfFolder(c.dir),
    new RegExp(`places 1 tensors in ${last} that it does not hold, e.g. 'lm_head.weight'`),
  );
  c = fresh('escape');
  edit(c.indexFile, (ix) => {
    ix.weight_map['model.norm.weight'] = '../x.safetensors';
  });
  assert.throws(() => loadHfFolder(c.dir), /not a file name in the folder/);
});

test('folders that cannot be loaded get a clear error', (t) => {
  const base = tempDir(t);
  const mk = (name: string, files: Record<string, string>) => {
    const dir = path.join(base, name);
    fs.mkdirSync(dir);
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
    return dir;
  };
  assert.throws(() => loadHfFolder(path.join(base, 'absent')), /loadHfFolder: folder .*absent does not exist/);
  const file = path.join(base, 'file');
  fs.writeFileSync(file, 'x');
  assert.throws(() => loadHfFolder(file), /is a file, not a model folder/);
  assert.throws(() => loadHfFolder(mk('empty', {})), /loadHfFolder: no config.json in .*empty/);
  assert.throws(
    () => loadHfFolder(mk('adapter', { 'adapter_config.json': '{}' })),
    /holds a PEFT adapter .* loadPeftAdapter/,
  );
  const noWeights = mk('no-weights', { 'config.json': '{}' });
  assert.throws(
    () => loadHfFolder(noWeights),
    new RegExp(`expected model.safetensors or model.safetensors.index.json in ${noWeights}`),
  );
  assert.throws(
    () => loadHfFolder(mk('bin', { 'config.json': '{}', 'pytorch_model.bin': '' })),
    /has pytorch_model.bin but only safetensors is supported: convert with python -c .*save_pretrained/,
  );
  assert.throws(() => loadHfFolder(mk('bad-json', { 'config.json': '{"a":' })), /config.json is not valid JSON/);
  assert.throws(
    () => loadHfFolder(mk('gguf', { 'config.json': '{}', 'model.gguf': '' })),
    /model.gguf is not a transformers checkpoint/,
  );
});
