// packSft against TRL 1.13's pack_dataset (expected rows printed by trl.pack_dataset in the reference venv).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PACK_BATCH, packSft } from '../../src/data/packing.js';
import type { SftExample } from '../../src/data/sft.js';

const ex = (rows: number[][]): SftExample[] => rows.map((ids) => ({ ids, promptLength: 0 }));
const view = (out: SftExample[]) => ({ ids: out.map((e) => e.ids), seq: out.map((e) => e.seqLengths ?? null) });

test('packSft bfd / bfd_split / wrapped: the rows of trl.pack_dataset', () => {
  const a = ex([[1, 2, 3, 4, 5], [6, 7], [8, 9, 10], [11]]);
  assert.deepEqual(view(packSft(a, 4, 'bfd')), {
    ids: [
      [1, 2, 3, 4],
      [8, 9, 10, 11],
      [6, 7],
    ],
    seq: [[4], [3, 1], [2]],
  });
  assert.deepEqual(view(packSft(a, 4, 'bfd_split')), {
    ids: [
      [1, 2, 3, 4],
      [8, 9, 10, 5],
      [6, 7, 11],
    ],
    seq: [[4], [3, 1], [2, 1]],
  });
  assert.deepEqual(view(packSft(a, 4, 'wrapped')), {
    ids: [
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [9, 10, 11],
    ],
    seq: [null, null, null],
  });
  // Equal lengths keep data order; rows with the same room fill oldest first.
  const b = ex([[1, 2], [3, 4], [5], [6, 7, 8], [9], [10, 11]]);
  assert.deepEqual(view(packSft(b, 5, 'bfd')), {
    ids: [[6, 7, 8, 1, 2], [3, 4, 10, 11, 5], [9]],
    seq: [[3, 2], [2, 2, 1], [1]],
  });
});

test('packSft: labels travel with their tokens; batches of PACK_BATCH rows pack apart', () => {
  const [row] = packSft(
    [
      { ids: [1, 2, 3], promptLength: 2 },
      { ids: [4, 5], promptLength: 1 },
    ],
    8,
    'bfd',
  );
  assert.deepEqual(row, { ids: [1, 2, 3, 4, 5], promptLength: 0, labels: [0, 0, 1, 0, 1], seqLengths: [3, 2] });
  const many = packSft(ex(Array.from({ length: PACK_BATCH + 1 }, () => [7])), 4, 'wrapped');
  assert.equal(many.length, Math.ceil(PACK_BATCH / 4) + 1);
  assert.throws(() => packSft(ex([[1]]), 0, 'bfd'), /max_length > 0/);
});
