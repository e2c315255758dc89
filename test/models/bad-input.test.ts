// Checkpoints that do not fit their config give errors naming the tensor or key, never a
// silently wrong model.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/load.js';
import { FIXTURES } from './fixtures.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

/** A copy of a fixture model whose tensors and config the test may edit. */
function variant(arch: string, edit: { tensors?: (m: Map<string, any>) => void; config?: (c: any) => void }): string {
  // eslint-disable-line @typescript-eslint/no-explicit-any
  const dir = join(mkdtempSync(join(tmpdir(), 'tsdpo-bad-')), arch);
  cpSync(`${FIXTURES}${arch}/policy`, dir, { recursive: true });
  if (edit.tensors) {
    const m = new Map(
      [...readSafetensors(`${dir}/model.safetensors`).tensors].map(([k, t]) => [
        k,
        { name: t.name, dtype: t.dtype, shape: t.shape, data: t.data },
      ]),
    );
    edit.tensors(m);
    writeSafetensors(`${dir}/model.safetensors`, m);
  }
  if (edit.config) {
    const c = JSON.parse(readFileSync(`${dir}/config.json`, 'utf8'));
    edit.config(c);
    writeFileSync(`${dir}/config.json`, JSON.stringify(c));
  }
  return dir;
}

test('missing tensor', () => {
  const dir = variant('llama', { tensors: (m) => m.delete('model.layers.1.mlp.up_proj.weight') });
  assert.throws(() => loadModel(dir), /missing tensor 'model\.layers\.1\.mlp\.up_proj\.weight'/);
});

test('unknown extra tensor', () => {
  const dir = variant('qwen3', {
    tensors: (m) =>
      m.set('model.layers.0.mystery.weight', {
        name: 'model.layers.0.mystery.weight',
        dtype: 'F32',
        shape: [2],
        data: new Float32Array(2),
      }),
  });
  assert.throws(() => loadModel(dir), /unexpected tensor 'model\.layers\.0\.mystery\.weight'/);
});

test('shape that does not fit config.json', () => {
  const dir = variant('mistral', {
    config: (c) => {
      c.intermediate_size = 128;
    },
  });
  assert.throws(
    () => loadModel(dir),
    /tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[160, 64\], config\.json implies \[128, 64\]/,
  );
});

test('unsupported dtype (quantized int8 weights)', () => {
  const dir = variant('gpt2', {
    tensors: (m) => {
      const t = m.get('transformer.ln_f.bias');
      m.set('transformer.ln_f.bias', { ...t, dtype: 'I8', data: new Int8Array(t.shape[0]) });
    },
  });
  assert.throws(() => loadModel(dir), /transformer\.ln_f\.bias' has dtype I8/);
});

test('unsupported rope type', () => {
  const dir = variant('llama', {
    config: (c) => {
      c.rope_parameters = { rope_type: 'yarn', rope_theta: 10000, factor: 4 };
    },
  });
  assert.throws(() => loadModel(dir), /rope type 'yarn' is not supported/);
});

test('unknown model_type lists the supported ones', () => {
  const dir = variant('llama', {
    config: (c) => {
      c.model_type = 'falcon';
    },
  });
  assert.throws(
    () => loadModel(dir),
    /model_type 'falcon' is not supported; supported: gpt2, llama, mistral, qwen2, qwen3, gemma3_text/,
  );
});

test('missing folder and missing weights say what was expected where', () => {
  assert.throws(() => loadModel('/nonexistent/model'), /nonexistent\/model/);
  const dir = mkdtempSync(join(tmpdir(), 'tsdpo-empty-'));
  writeFileSync(join(dir, 'config.json'), '{"model_type": "llama"}');
  assert.throws(() => loadModel(dir), /model\.safetensors/);
});

test('llama3 rope scaling is read from old-style rope_scaling', () => {
  const dir = variant('llama', {
    config: (c) => {
      delete c.rope_parameters;
      c.rope_theta = 500000;
      c.rope_scaling = {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 64,
      };
    },
  });
  const m = loadModel(dir);
  assert.equal(m.family, 'llama');
});

test('llama3 rope scaling: fast rotations unchanged, slow ones divided by factor, smooth between', async () => {
  const { invFreq } = await import('../../src/nn/rope.js');
  const base = invFreq({ rope_type: 'default', rope_theta: 500000 }, 64);
  const scaled = invFreq(
    {
      rope_type: 'llama3',
      rope_theta: 500000,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    },
    64,
  );
  for (let i = 0; i < base.length; i++) {
    const wavelen = (2 * Math.PI) / base[i];
    if (wavelen < 64 / 4) assert.equal(scaled[i], base[i]);
    else if (wavelen > 64) assert.ok(Math.abs(scaled[i] - base[i] / 8) < 1e-12 * base[i] + 1e-7 * base[i]);
    else assert.ok(scaled[i] < base[i] && scaled[i] > base[i] / 8, `dim ${i} interpolated`);
  }
});
