// Embedding lookup and gradient: reference grad against finite differences, the WebAssembly
// kernels against the references (repeated ids, four runtimes), and out-of-range ids.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as ref from '../../src/backend/ref/embedding.js';
import * as fast from '../../src/backend/cpu/fast/embedding.js';
import { allRuntimes, assertClose, closeRuntimes, f32, Mem, randInt, randn, rng } from './helpers.js';
import { checkGrad } from './gradcheck.js';

after(closeRuntimes);

test('reference embeddingGrad matches finite differences (float64)', () => {
  const rand = rng(41);
  const [N, D, V] = [5, 3, 4];
  const weight = randn(rand, V * D),
    ids = Int32Array.from([1, 3, 1, 0, 1]),
    dy = randn(rand, N * D);
  const dw = new Float64Array(V * D);
  ref.embeddingGrad(dy, ids, dw, N, D, V);
  checkGrad(
    'embeddingGrad',
    (v) => {
      const o = new Float64Array(N * D);
      ref.embedding(v, ids, o, N, D, V);
      return o;
    },
    weight,
    dy,
    dw,
  );
});

test('wasm embedding and embedding_grad match the reference', async () => {
  const runtimes = await allRuntimes();
  const rand = rng(42);
  for (const [N, D, V] of [
    [1, 1, 1],
    [7, 7, 3],
    [33, 33, 50],
    [1, 33, 7],
    [1024, 768, 500],
    [64, 7, 2],
  ]) {
    const weight = f32(randn(rand, V * D)),
      ids = Int32Array.from({ length: N }, () => randInt(rand, 0, V));
    const dy = f32(randn(rand, N * D)),
      dw0 = f32(randn(rand, V * D)); // accumulates onto dw0
    const out = new Float64Array(N * D),
      dw = dw0.slice();
    ref.embedding(weight, ids, out, N, D, V);
    ref.embeddingGrad(dy, ids, dw, N, D, V);
    for (const { rt, label } of runtimes) {
      const mem = new Mem(rt, D === 7 ? 4 : 0);
      const pid = mem.i32(ids),
        po = mem.zeros(N * D, NaN),
        pdw = mem.f32(dw0);
      fast.embedding(rt, mem.f32(weight), pid, po, N, D, V);
      fast.embeddingGrad(rt, mem.f32(dy), pid, pdw, N, D, V);
      assertClose(mem.read(po, N * D), out, `embedding [${N}, ${D}, ${V}] (${label})`, 0, 0);
      assertClose(mem.read(pdw, V * D), dw, `embedding_grad [${N}, ${D}, ${V}] (${label})`, 1e-6, 1e-6 * Math.sqrt(N));
      mem.free();
    }
  }
});

test('ids outside [0, V) are errors (wasm: index out of range; reference: names id, position and V)', async () => {
  const [N, D, V] = [3, 2, 4];
  for (const bad of [4, -1]) {
    const ids = Int32Array.from([0, 1, bad]);
    assert.throws(
      () => ref.embedding(new Float64Array(V * D), ids, new Float64Array(N * D), N, D, V),
      new RegExp(`embedding: id ${bad} at position 2 is outside \\[0, 4\\)`),
    );
    assert.throws(
      () => ref.embeddingGrad(new Float64Array(N * D), ids, new Float64Array(V * D), N, D, V),
      /id .* at position 2/,
    );
    for (const { rt } of await allRuntimes()) {
      const mem = new Mem(rt);
      const pid = mem.i32(ids);
      assert.throws(() => fast.embedding(rt, mem.zeros(V * D), pid, mem.zeros(N * D), N, D, V), /index out of range/);
      assert.throws(
        () => fast.embeddingGrad(rt, mem.zeros(N * D), pid, mem.zeros(V * D), N, D, V),
        /index out of range/,
      );
      mem.free();
    }
  }
});
