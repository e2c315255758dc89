// Seeded epoch sampler: permutations, determinism, batches within an epoch, save/restore of the position.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EpochSampler, epochPermutation } from '../../src/data/index.js';

test('each epoch is a permutation of 0..N-1, fixed by (seed, epoch), different across epochs and seeds', () => {
  const a = epochPermutation(100, 42, 0);
  assert.deepEqual(
    [...a].sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.deepEqual(epochPermutation(100, 42, 0), a);
  assert.notDeepEqual(epochPermutation(100, 42, 1), a);
  assert.notDeepEqual(epochPermutation(100, 43, 0), a);
  assert.deepEqual(Array.from(epochPermutation(5, 42, 0, false)), [0, 1, 2, 3, 4]);
  // Not the identity, and roughly uniform: position of item 0 over many seeds.
  const hits = new Array(4).fill(0);
  for (let s = 0; s < 4000; s++) hits[epochPermutation(4, s, 0).indexOf(0)]++;
  for (const h of hits) assert.ok(h > 850 && h < 1150, `position counts ${hits}`);
});

test('batches: a short last batch ends an epoch (or is dropped with dropLast); epochs chain', () => {
  const s = new EpochSampler(5, { seed: 1 });
  const b = [s.next(2), s.next(2), s.next(2), s.next(2)];
  assert.deepEqual(
    b.map((x) => x.indices.length),
    [2, 2, 1, 2],
  );
  assert.deepEqual(
    b.map((x) => x.epoch),
    [0, 0, 0, 1],
  );
  assert.deepEqual([...b[0].indices, ...b[1].indices, ...b[2].indices], Array.from(epochPermutation(5, 1, 0)));
  assert.deepEqual(b[3].indices, Array.from(epochPermutation(5, 1, 1)).slice(0, 2));
  const d = new EpochSampler(5, { seed: 1, dropLast: true });
  assert.deepEqual(
    [d.next(2), d.next(2), d.next(2)].map((x) => [x.indices.length, x.epoch]),
    [
      [2, 0],
      [2, 0],
      [2, 1],
    ],
  );
});

test('save and restore the position: a resumed sampler continues with the same indices', () => {
  const run = new EpochSampler(7, { seed: 9 });
  for (let i = 0; i < 5; i++) run.next(3);
  const saved = JSON.parse(JSON.stringify(run.state()));
  assert.deepEqual(run.position, { epoch: saved.epoch, index: saved.index });
  const rest = Array.from({ length: 6 }, () => run.next(3));
  const resumed = new EpochSampler(7, { seed: 9 });
  resumed.restore(saved);
  assert.deepEqual(
    Array.from({ length: 6 }, () => resumed.next(3)),
    rest,
  );
  assert.throws(() => new EpochSampler(8, { seed: 9 }).restore(saved), /saved for size 7, seed 9/);
  assert.throws(() => resumed.restore({ epoch: 0, index: 8 }), /outside 0\.\.7/);
  assert.throws(() => new EpochSampler(0), /no examples/);
});
