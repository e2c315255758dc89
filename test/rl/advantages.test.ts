// The host-side PPO arithmetic on small hand-worked cases (TRL 0.28's definitions): truncation,
// sequence lengths, masks, the legacy adaptive KL controller (TRL 0.11's AdaptiveKLController).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdaptiveKl, paddingMasks, sequenceLengths, truncateResponses } from '../../src/rl/advantages.js';

test('responses: truncation after the first stop token, lengths up to it (EOS first, mid-way, none)', () => {
  const resp = Int32Array.from([2, 5, 2, 6, 7, 2, 2, 9, 5, 6, 7, 8]); // 3 rows of 4; stop 2, pad 0
  const post = truncateResponses(resp, 3, 4, 2, 0);
  assert.deepEqual(Array.from(post), [2, 0, 0, 0, 7, 2, 0, 0, 5, 6, 7, 8]);
  const lens = sequenceLengths(post, 3, 4, 0);
  assert.deepEqual(Array.from(lens), [0, 1, 3]);
  const m = paddingMasks(lens, 4);
  assert.deepEqual(Array.from(m.pad), [0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(m.padP1), [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
});

test('adaptive KL: kl_coef *= 1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon', () => {
  const c = new AdaptiveKl(0.2, 6, 10000);
  c.update(12, 256); // error 1 -> clipped to 0.2
  assert.ok(Math.abs(c.value - 0.2 * 1.00512) < 1e-15);
  c.update(5.4, 100); // error -0.1
  assert.ok(Math.abs(c.value - 0.2 * 1.00512 * 0.999) < 1e-15);
});
