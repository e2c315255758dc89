// Computing each prompt once for its chosen and rejected completions gives the numbers (log-probs
// and every gradient) of computing it twice, for every family (incl. Gemma 3's sliding window).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { loadModel, trainAll } from '../../src/models/load.js';
import { pairLogpsSharedPrompt, sequenceLogps, type TokenBatch } from '../../src/train/logps.js';
import { ARCHS, FIXTURES, fixture, relError } from './fixtures.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

for (const arch of ARCHS) {
  test(`${arch}: shared prompt == prompt computed twice`, async () => {
    const fx = fixture(arch);
    const b = fx.json.batch;
    const pairs = b.prompts.map((p: number[], i: number) => ({
      promptIds: p,
      chosenIds: [...b.chosen[i], 2],
      rejectedIds: [...b.rejected[i], 2],
    }));
    const ids = fx.tensors.get('input_ids')!;
    const batch: TokenBatch = {
      rows: 4,
      T: ids.shape[1],
      inputIds: ids.i32(),
      attentionMask: fx.tensors.get('attention_mask')!.i32(),
      completionMask: fx.tensors.get('completion_mask')!.f32,
    };
    const grads = async (shared: boolean): Promise<{ seq: Float64Array; g: Map<string, Float32Array> }> => {
      const model = loadModel(`${FIXTURES}${arch}/policy`);
      const params = trainAll(model);
      const seq = await E.tidyAsync(async () => {
        const r = shared
          ? pairLogpsSharedPrompt(model, pairs, 0)
          : sequenceLogps(model, batch, { headOnCompletion: true });
        // Weighted sum so that every row's gradient matters and differs.
        E.backward(E.sum(E.mul(r.seq, E.tensor(Float32Array.from([1, -2, 3, -0.5])))));
        return Float64Array.from(await r.seq.toArray());
      });
      const g = new Map<string, Float32Array>();
      for (const p of params) g.set(p.name, Float32Array.from(await p.tensor.grad!.toArray()));
      return { seq, g };
    };
    const twice = await grads(false),
      once = await grads(true);
    assert.ok(relError(once.seq, twice.seq) < 1e-5, `log-probs ${Array.from(once.seq)} vs ${Array.from(twice.seq)}`);
    assert.ok(relError(once.seq, fx.tensors.get('policy.seq_logps')!.f32) < 1e-5, 'and equal to transformers');
    for (const [name, g] of twice.g) {
      const err = relError(once.g.get(name)!, g);
      assert.ok(err < 1e-4, `grad ${name}: ${err}`);
    }
  });
}
