// LoRA parity with PEFT (fixture test/fixtures/hf-tiny/llama/lora: r 4, alpha 8 on q_proj and
// v_proj): sequence log-probs with the adapter on and off, the adapter gradients of the sigmoid
// DPO loss when the reference is the same base model with the adapter switched off, save/load
// round trip and merging into the base weights.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { loadModel } from '../../src/models/load.js';
import { adapterOf, loadAdapter, mergeAdapter, newAdapter, saveAdapter } from '../../src/models/lora.js';
import { LOSSES } from '../../src/train/losses.js';
import { sequenceLogps, type TokenBatch } from '../../src/train/logps.js';
import { FIXTURES, fixture, relError } from './fixtures.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

function batch(): TokenBatch {
  const fx = fixture('llama');
  const ids = fx.tensors.get('input_ids')!;
  return {
    rows: ids.shape[0],
    T: ids.shape[1],
    inputIds: ids.i32(),
    attentionMask: fx.tensors.get('attention_mask')!.i32(),
    completionMask: fx.tensors.get('completion_mask')!.f32,
  };
}

test('adapter on / off log-probs and adapter gradients equal PEFT', async () => {
  const model = loadModel(`${FIXTURES}llama/policy`);
  const info = loadAdapter(model, `${FIXTURES}llama/lora`);
  assert.equal(info.config.r, 4);
  const expected = fixture('llama/lora');
  const b = batch();
  const loss = await E.tidyAsync(async () => {
    const pol = sequenceLogps(model, b, { adapter: true });
    const ref = E.noGrad(() => sequenceLogps(model, b, { adapter: false }));
    assert.ok(
      relError(await pol.seq.toArray(), expected.tensors.get('policy.seq_logps')!.f32) < 1e-5,
      'adapter-on log-probs',
    );
    assert.ok(
      relError(await ref.seq.toArray(), expected.tensors.get('reference.seq_logps')!.f32) < 1e-5,
      'adapter-off log-probs',
    );
    const lens = E.tensor(Float32Array.from(pol.tokens));
    const l = E.mean(
      LOSSES.sigmoid.fn(
        {
          policyChosen: E.narrow(pol.seq, 0, 0, 2),
          policyRejected: E.narrow(pol.seq, 0, 2, 2),
          refChosen: E.narrow(ref.seq, 0, 0, 2),
          refRejected: E.narrow(ref.seq, 0, 2, 2),
          chosenLengths: E.narrow(lens, 0, 0, 2),
          rejectedLengths: E.narrow(lens, 0, 2, 2),
        },
        { beta: 0.1, labelSmoothing: 0, simpoGamma: 0 },
      ).losses,
    );
    E.backward(l);
    return l.item();
  });
  assert.ok(Math.abs(loss - expected.json.loss) < 1e-6, `loss ${loss} vs PEFT ${expected.json.loss}`);
  for (const p of info.params) {
    const [path, which] = [p.name.slice(0, p.name.lastIndexOf('.')), p.name.slice(p.name.lastIndexOf('.') + 1)];
    const want = expected.tensors.get(`grad.base_model.model.${path}.${which}.default.weight`)!.f32;
    const err = relError(await p.tensor.grad!.toArray(), want);
    assert.ok(err < 1e-4, `grad ${p.name}: relative error ${err}`);
  }
  // Base weights received no gradient: only the adapter trains.
  for (const t of model.params.values()) assert.equal(t.grad, null, `${t.name} should not train`);
});

test('save / load round trip, and merging gives the adapter-on outputs without an adapter', async () => {
  const model = loadModel(`${FIXTURES}llama/policy`);
  loadAdapter(model, `${FIXTURES}llama/lora`);
  const dir = join(mkdtempSync(join(tmpdir(), 'tsdpo-lora-')), 'adapter');
  await saveAdapter(model, dir, 'policy');
  const again = loadModel(`${FIXTURES}llama/policy`);
  loadAdapter(again, dir);
  const b = batch();
  const on = await E.tidy(() => sequenceLogps(model, b).seq).toArray();
  assert.deepEqual(Array.from(await E.tidy(() => sequenceLogps(again, b).seq).toArray()), Array.from(on));
  mergeAdapter(again);
  assert.equal(adapterOf(again), null);
  const merged = await E.tidy(() => sequenceLogps(again, b).seq).toArray();
  assert.ok(relError(merged, on) < 1e-5, 'merged model matches the adapter-on model');
});

test('a new adapter starts at the base model (B = 0) and trains only A, B', async () => {
  const model = loadModel(`${FIXTURES}qwen3/policy`);
  const b = batch();
  const base = await E.tidy(() => sequenceLogps(model, b).seq).toArray();
  const info = newAdapter(model, { r: 8, alpha: 16, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], seed: 1 });
  assert.equal(info.params.length, 2 * 4 * 2);
  const withAdapter = await E.tidy(() => sequenceLogps(model, b).seq).toArray();
  assert.deepEqual(Array.from(withAdapter), Array.from(base));
  assert.throws(
    () => newAdapter(loadModel(`${FIXTURES}qwen3/policy`), { r: 4, alpha: 8, targetModules: ['nope'] }),
    /match no linear layer/,
  );
});
