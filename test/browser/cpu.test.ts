// The CPU backend in a real browser: headless Chromium loads the engine as ES modules, the same
// kernels-*.wasm, Web Workers on a shared WebAssembly.Memory, and trains a few steps; the page
// posts its results back (harness.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPORT, runInChromium } from './harness.js';

const PAGE = `<!doctype html><meta charset="utf-8"><title>tsdpo cpu</title><script type="module">
${REPORT}
try {
  const E = await import('/dist/src/core/index.js');
  const { initEngine } = await import('/dist/src/engine.js');
  const backend = await initEngine({ device: 'cpu', threads: 2 });
  const rt = backend.rt;
  // A product big enough to run on both threads, checked against plain JavaScript.
  const M = 96, K = 80, N = 72;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));
  const c = await E.tidy(() => E.matmul(E.tensor(a, [M, K]), E.tensor(b, [K, N]))).toArray();
  let err = 0;
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
    err = Math.max(err, Math.abs(s - c[i * N + j]));
  }
  // A few gradient steps on a quadratic: the loss must fall.
  const w = E.keep(E.param(E.tensor(Float32Array.from({ length: 256 }, (_, i) => Math.sin(3 * i)))));
  const losses = [];
  for (let s = 0; s < 5; s++) {
    losses.push(await E.tidyAsync(async () => {
      const l = E.mean(E.square(E.gelu(w, 'tanh')));
      E.backward(l);
      // Plain gradient descent with the engine's own kernels: w -= 0.5 * grad.
      backend.kernels.affine({ x: w.grad.storage, out: w.grad.storage, n: 256, scale: -0.5, shift: 0 });
      backend.kernels.binary({
        op: 'add', a: w.storage, b: w.grad.storage, out: w.storage, shape: [256], aStrides: [1], bStrides: [1],
      });
      w.grad.dispose(); w.grad = null;
      return l.item();
    }));
  }
  report({ ok: true, threads: rt.threads, relaxed: rt.relaxed, isolated: self.crossOriginIsolated, err, losses });
} catch (e) {
  report({ ok: false, error: String(e && e.stack || e) });
}
</script>`;

test(
  'CPU backend (WebAssembly kernels, Web Workers, shared memory) trains in headless Chromium',
  { timeout: 120_000 },
  async (t) => {
    const r = await runInChromium(t, PAGE, ['--disable-gpu']);
    if (!r) return;
    assert.equal(r.isolated, true, 'page is cross-origin isolated');
    assert.equal(r.threads, 2);
    assert.ok(r.err < 1e-3, `matmul error ${r.err}`);
    assert.ok(r.losses[4] < r.losses[0], `losses ${r.losses}`);
  },
);
