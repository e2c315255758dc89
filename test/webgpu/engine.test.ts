// Device selection: --device webgpu opens the WebGPU backend (software adapters included) or
// fails with the reason; auto takes WebGPU only on a hardware adapter and otherwise falls back to
// the CPU backend with one notice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getBackend } from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { GPU } from './gpu.js';

test('device webgpu: the WebGPU backend, or a clear error naming why not', async () => {
  if (GPU.backend) {
    const be = await initEngine({ device: 'webgpu' });
    assert.equal(be.name, 'webgpu');
    assert.equal(getBackend(), be);
    assert.equal(be.supports('f64'), false);
  } else {
    await assert.rejects(initEngine({ device: 'webgpu' }), /^Error: webgpu: /);
  }
});

test('device auto: WebGPU on a hardware adapter, else the CPU with a one-line notice', async () => {
  const notices: string[] = [];
  const be = await initEngine({ device: 'auto', threads: 1, log: (m) => notices.push(m) });
  if (GPU.backend && !GPU.backend.fallbackAdapter) {
    assert.equal(be.name, 'webgpu');
    assert.equal(notices.length, 0);
  } else {
    assert.equal(be.name, 'cpu');
    assert.equal(notices.length, 1);
    assert.match(notices[0], /using the CPU backend/);
    assert.ok(!notices[0].includes('\n'), 'one line');
    if (GPU.backend) assert.match(notices[0], /runs on the CPU/);
  }
});
