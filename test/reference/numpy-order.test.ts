// numpyPermutation (datasets' Dataset.shuffle order) against numpy's own np.random.default_rng(seed).permutation(n).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { numpyPermutation } from '../../src/data/numpy-order.js';
import { tempDir } from '../helpers/assets.js';
import { referenceAvailable, runPython } from './harness.js';

const avail = referenceAvailable();
const CASES: Array<[number, number]> = [
  [1, 0],
  [2, 1],
  [10, 42],
  [257, 3],
  [1000, 2 ** 40 + 5],
];

test(
  'numpyPermutation = np.random.default_rng(seed).permutation(n)',
  { skip: avail.ok ? false : avail.why },
  async () => {
    const py =
      'import json, sys, numpy as np\nprint(json.dumps([np.random.default_rng(s).permutation(n).tolist() ' +
      'for n, s in json.loads(sys.argv[1])]))';
    const expected = JSON.parse(
      await runPython(['-c', py, JSON.stringify(CASES)], tempDir('tsdpo-ref-np-')),
    ) as number[][];
    assert.deepEqual(
      CASES.map(([n, s]) => numpyPermutation(n, s)),
      expected,
    );
  },
);
