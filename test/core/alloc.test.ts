// The CPU memory allocator: blocks never overlap, steady shapes reuse memory exactly, and shapes
// that keep changing (sequence lengths of real data) do not grow the heap without bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../src/core/random.js';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';

test('random allocations never overlap, and free memory is reused', async () => {
  const rt = await KernelRuntime.create({ threads: 1 });
  const rng = new Rng(1);
  const live = new Map<number, number>();
  for (let i = 0; i < 20000; i++) {
    if (live.size > 0 && rng.next() < 0.5) {
      const keys = [...live.keys()];
      const p = keys[rng.int(keys.length)];
      rt.free(p);
      live.delete(p);
    } else {
      const bytes = 1 + rng.int(rng.next() < 0.1 ? 4 << 20 : 20000);
      const p = rt.malloc(bytes);
      assert.equal(p % 64, 0);
      for (const [q, n] of live) assert.ok(p + bytes <= q || q + n <= p, `block ${p}+${bytes} overlaps ${q}+${n}`);
      live.set(p, bytes);
    }
  }
  await rt.close();
});

test('a growing buffer (a KV cache) between temporaries does not grow the heap without bound', async () => {
  const rt = await KernelRuntime.create({ threads: 1 });
  let peak = 0,
    largest = 0;
  let cache = rt.malloc(4096);
  for (let S = 1; S < 3000; S++) {
    const tmp = rt.malloc(20000 + (S % 13) * 1000);
    const next = rt.malloc(S * 4096);
    rt.free(cache);
    cache = next;
    rt.free(tmp);
    peak = Math.max(peak, rt.liveBytes);
    largest = Math.max(largest, S * 4096);
  }
  // Free memory is merged and reused once it exceeds max(live, 64 MiB); size classes alone kept 287 MiB here.
  const bound = 2 * peak + (64 << 20) + largest;
  assert.ok(
    rt.reservedBytes <= bound,
    `reserved ${(rt.reservedBytes / 2 ** 20).toFixed(1)} MiB for a peak of ${(peak / 2 ** 20).toFixed(1)} MiB live`,
  );
  await rt.close();
});
