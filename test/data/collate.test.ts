// Collation against the transformers fixtures: the 2 pairs of test/fixtures/hf-tiny/<arch>/expected.json,
// collated here, must give exactly the input_ids / attention_mask / completion_mask HF was run on.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { collatePreference, collateSft, padIdFor, type TokenizedPair } from '../../src/data/index.js';
import { readJson, ROOT } from '../helpers/assets.js';
import { readSafetensors } from '../helpers/safetensors.js';

const ARCHS = ['gpt2', 'llama', 'mistral', 'qwen2', 'qwen3', 'gemma3'];

interface FixtureBatch {
  pairs: number;
  pad_id: number;
  eos_id: number;
  prompts: number[][];
  chosen: number[][];
  rejected: number[][];
}

for (const arch of ARCHS) {
  test(`collatePreference reproduces the ${arch} fixture batch exactly`, () => {
    const dir = join(ROOT, 'test/fixtures/hf-tiny', arch);
    const batch = readJson(join(dir, 'expected.json')).batch as FixtureBatch;
    const ref = readSafetensors(join(dir, 'expected.safetensors'), ['input_ids', 'attention_mask', 'completion_mask']);
    // Completions in expected.json are without EOS; the pipeline's completions end with it.
    const pairs: TokenizedPair[] = batch.prompts.map((p, i) => ({
      promptIds: p,
      chosenIds: [...batch.chosen[i], batch.eos_id],
      rejectedIds: [...batch.rejected[i], batch.eos_id],
    }));
    const b = collatePreference(pairs, { padId: batch.pad_id });
    const [B, T] = ref.input_ids.shape;
    assert.equal(b.B, B);
    assert.equal(b.T, T);
    assert.equal(b.P, batch.pairs);
    assert.deepEqual(b.inputIds, ref.input_ids.data);
    assert.deepEqual(b.attentionMask, ref.attention_mask.data);
    assert.deepEqual(b.completionMask, ref.completion_mask.data);
    const order = [0, 1]
      .map((i) => [batch.prompts[i], batch.chosen[i]])
      .concat([0, 1].map((i) => [batch.prompts[i], batch.rejected[i]]));
    assert.deepEqual(
      Array.from(b.promptLengths),
      order.map(([p]) => p.length),
    );
    assert.deepEqual(
      Array.from(b.completionLengths),
      order.map(([, c]) => c.length + 1),
    );
    assert.deepEqual(
      Array.from(b.seqLengths),
      order.map(([p, c]) => p.length + c.length + 1),
    );
  });
}

test('collatePreference: padToMultipleOf, pad id choice', () => {
  const pairs: TokenizedPair[] = [{ promptIds: [5, 6], chosenIds: [7, 2], rejectedIds: [8, 9, 2] }];
  const b = collatePreference(pairs, { padId: 99, padToMultipleOf: 4 });
  assert.equal(b.T, 8);
  assert.deepEqual(Array.from(b.inputIds), [5, 6, 7, 2, 99, 99, 99, 99, 5, 6, 8, 9, 2, 99, 99, 99]);
  assert.deepEqual(Array.from(b.completionMask), [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0]);
  assert.equal(padIdFor({ padId: 3, eosId: 2 }), 3);
  assert.equal(padIdFor({ padId: null, eosId: 2 }), 2);
  assert.equal(padIdFor({ padId: null, eosId: null }), 0);
  assert.throws(() => collatePreference([]), /empty batch/);
});

test('collateSft: one sequence per example, loss from promptLength', () => {
  const b = collateSft(
    [
      { ids: [1, 2, 3, 4], promptLength: 2 },
      { ids: [5, 6], promptLength: 0 },
    ],
    { padId: 0 },
  );
  assert.equal(b.B, 2);
  assert.equal(b.T, 4);
  assert.deepEqual(Array.from(b.inputIds), [1, 2, 3, 4, 5, 6, 0, 0]);
  assert.deepEqual(Array.from(b.attentionMask), [1, 1, 1, 1, 1, 1, 0, 0]);
  assert.deepEqual(Array.from(b.lossMask), [0, 0, 1, 1, 1, 1, 0, 0]);
  assert.deepEqual(Array.from(b.seqLengths), [4, 2]);
});
