// Dropout masks: the WebAssembly kernel gives exactly the reference's mask on any thread count;
// the reference keeps a fraction 1 - p, scales by 1 / (1 - p), and changes with the seed.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { dropoutMask as refMask, hash24 } from '../../src/backend/ref/random.js';
import { dropoutMask } from '../../src/backend/cpu/fast/random.js';
import { allRuntimes, closeRuntimes, Mem } from './helpers.js';

after(closeRuntimes);

test('wasm dropout_mask equals the reference bit for bit', async () => {
  const runtimes = await allRuntimes();
  for (const n of [1, 7, 33, 100003]) {
    for (const [p, seed] of [
      [0, 1],
      [0.1, 7],
      [0.5, 0xdeadbeef],
      [1, 3],
      [0.3, 0],
    ]) {
      const want = new Float32Array(n);
      refMask(want, n, p, seed);
      for (const { rt, label } of runtimes) {
        const mem = new Mem(rt, n === 33 ? 4 : 0);
        const po = mem.zeros(n, NaN);
        dropoutMask(rt, po, n, p, seed);
        assert.deepEqual(
          Float32Array.from(mem.read(po, n)),
          want,
          `dropout_mask n=${n} p=${p} seed=${seed} (${label})`,
        );
        mem.free();
      }
    }
  }
});

test('reference dropout mask: keep rate 1 - p, scale 1 / (1 - p), a new mask per seed', () => {
  const n = 200000;
  for (const p of [0.1, 0.5, 0.9]) {
    const m = new Float64Array(n);
    refMask(m, n, p, 42);
    const kept = m.filter((v) => v !== 0);
    const sd = Math.sqrt(n * p * (1 - p));
    assert.ok(Math.abs(kept.length - n * (1 - p)) < 5 * sd, `p=${p}: kept ${kept.length} of ${n}`);
    assert.ok(
      kept.every((v) => v === 1 / (1 - p)),
      `p=${p}: kept values are 1 / (1 - p)`,
    );
  }
  let same = 0;
  for (let i = 0; i < 10000; i++) if (hash24(1, i) >= 8388608 === hash24(2, i) >= 8388608) same++;
  assert.ok(Math.abs(same - 5000) < 300, `seeds 1 and 2 agree on ${same} of 10000 coin flips`);
  assert.throws(() => refMask(new Float64Array(1), 1, 1.5, 0), /p = 1.5/);
});
