// The WebGPU buffer pool's idle policy, on stand-in buffers (no GPU needed): by default it keeps as
// many idle bytes as were ever in use at once, so a step that frees and then needs again the same
// large buffers creates none twice; a fixed limit trims the largest idle buffers first; nothing is
// destroyed while recorded work that may use it is not yet submitted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../../src/backend/webgpu/pool.js';

const MiB = 2 ** 20;

function pool(maxIdle: number | null): { pool: BufferPool; created: number[]; destroyed: number[] } {
  const created: number[] = [],
    destroyed: number[] = [];
  const create = (size: number): GPUBuffer => {
    created.push(size);
    return { size, destroy: () => destroyed.push(size) } as unknown as GPUBuffer;
  };
  return { pool: new BufferPool(null as unknown as GPUDevice, 0, 4096 * MiB, maxIdle, create), created, destroyed };
}

/** One "step": buffers of these sizes in use at once, then all released. */
function step(p: BufferPool, sizes: number[]): void {
  const bufs = sizes.map((s) => p.acquire(s));
  for (const b of bufs) p.release(b);
}

test('default: idle buffers up to the peak in use are kept, so repeated steps create nothing', () => {
  const { pool: p, created, destroyed } = pool(null);
  // Over 8 GiB in use at once, as a gpt2-124m DPO step of 16 x 256 tokens on a GPU (logits 1.6 GB).
  const sizes = [...Array(6).fill(1600 * MiB), 64 * MiB, 3 * MiB];
  step(p, sizes);
  const first = created.length;
  for (let i = 0; i < 5; i++) step(p, sizes);
  assert.equal(created.length, first, "later steps reuse the first step's buffers");
  assert.deepEqual(destroyed, []);
  assert.equal(p.peakInUse, p.totalBytes);
  // The former fixed 8 GiB limit destroyed and re-created the largest buffers at every step.
  const fixed = pool(8192 * MiB);
  step(fixed.pool, sizes);
  const n = fixed.created.length;
  step(fixed.pool, sizes);
  assert.ok(fixed.created.length > n);
});

test('a fixed limit destroys the largest idle buffers first, down to half the limit', () => {
  const { pool: p, destroyed } = pool(1000 * MiB);
  step(p, [800 * MiB, 400 * MiB, 16 * MiB]);
  assert.ok(p.idleBytes <= 500 * MiB, `idle ${p.idleBytes / MiB} MiB`);
  assert.equal(destroyed[0] >= 800 * MiB, true, `first destroyed ${destroyed[0] / MiB} MiB`);
});

test('nothing is destroyed while recorded work is pending; trimExcess after the submit does it', () => {
  const { pool: p, destroyed } = pool(10 * MiB);
  let pending = true;
  p.pendingWork = () => pending;
  step(p, [32 * MiB, 32 * MiB]);
  assert.deepEqual(destroyed, []);
  pending = false; // the runtime submitted
  assert.ok(p.trimExcess() > 0);
  assert.ok(p.idleBytes <= 5 * MiB);
});
