// Engine behaviours: gradient accumulation across backward calls, detach and noGrad, errors that
// name shapes and ids, and the debug mode that names the op producing NaN.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

test('backward twice accumulates into .grad; detach and noGrad cut the graph', async () => {
  const w = E.keep(E.param(E.tensor([1, 2, 3])));
  for (let i = 0; i < 2; i++) E.tidy(() => E.backward(E.sum(E.mul(w, w))));
  assert.deepEqual(Array.from(await w.grad!.toArray()), [4, 8, 12]); // 2 * (2 w)
  E.tidy(() => {
    assert.equal(E.detach(E.mul(w, 2)).requiresGrad, false);
    assert.equal(E.noGrad(() => E.mul(w, 2)).requiresGrad, false);
    assert.throws(() => E.backward(E.sum(E.detach(E.mul(w, w)))), /does not depend on any tensor with requiresGrad/);
  });
  w.dispose();
});

test('shape and dtype mismatches name both shapes', () => {
  E.tidy(() => {
    assert.throws(() => E.add(E.zeros([2, 3]), E.zeros([4, 3])), /add: shapes \[2, 3\] and \[4, 3\] do not broadcast/);
    assert.throws(() => E.matmul(E.zeros([2, 3]), E.zeros([4, 5])), /matmul: inner dims differ: \[2, 3\] @ \[4, 5\]/);
    assert.throws(() => E.add(E.zeros([2]), E.zeros([2], 'i32')), /dtypes differ/);
    assert.throws(
      () => E.layerNorm(E.zeros([2, 4]), E.zeros([3]), null, 1e-5),
      /weight has shape \[3\], input's last dim is 4/,
    );
  });
});

test('an out-of-range token id is an error naming the id and its position', () => {
  E.tidy(() => {
    const w = E.zeros([10, 4]);
    assert.throws(() => E.embedding(w, E.tensor([1, 2, 12], [3], 'i32')), /id 12 at position 2 is outside \[0, 10\)/);
    assert.throws(
      () => E.logSoftmaxGather(E.zeros([2, 10]), E.tensor([3, 10], [2], 'i32')),
      /target 10 at row 1 is outside \[0, 10\)/,
    );
  });
});

test('debug mode names the op whose output is not finite', () => {
  E.setDebugNaN(true);
  try {
    E.tidy(() => assert.throws(() => E.log(E.tensor([1, -1])), /debug: log produced NaN at flat index 1/));
  } finally {
    E.setDebugNaN(false);
  }
});

test('backward with free: same gradients, intermediates released as it goes, root kept', async () => {
  const run = async (free: boolean): Promise<{ g: number[]; hidden: E.Tensor; loss: E.Tensor }> => {
    const w = E.param(E.tensor([0.5, -1, 2, 0.25], [2, 2]));
    const x = E.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
    const hidden = E.tanh(E.matmul(x, w)); // intermediate
    const loss = E.sum(E.square(hidden));
    E.backward(loss, { free });
    return { g: Array.from(await w.grad!.toArray()), hidden, loss };
  };
  await E.tidyAsync(async () => {
    const kept = await run(false),
      freed = await run(true);
    assert.deepEqual(freed.g, kept.g);
    assert.equal(kept.hidden.disposed, false);
    assert.equal(freed.hidden.disposed, true, 'the intermediate was freed during backward');
    assert.equal(freed.loss.disposed, false, 'the root stays');
  });
});
