// Training behaviour of the engine: a small MLP learns a non-linear function, and a long run of
// training steps does not grow memory.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { Rng, tidy, type Tensor } from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { DEFAULT_OPTIMIZER, Optimizer } from '../../src/train/optim.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

function mlp(rng: Rng): { params: { name: string; tensor: Tensor }[]; f: (x: Tensor) => Tensor } {
  const init = (shape: number[], scale: number): Tensor =>
    E.keep(
      E.param(
        E.tensor(
          Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal() * scale),
          shape,
        ),
      ),
    );
  const w1 = init([32, 2], 1),
    b1 = init([32], 0.1),
    w2 = init([32, 32], 0.2),
    b2 = init([32], 0.1),
    w3 = init([1, 32], 0.2);
  return {
    params: [w1, b1, w2, b2, w3].map((tensor, i) => ({ name: `p${i}`, tensor })),
    f: (x) => E.linear(E.gelu(E.linear(E.tanh(E.linear(x, w1, b1)), w2, b2), 'tanh'), w3),
  };
}

/** Points in [-1, 1]^2 labelled by whether they are inside the circle of radius 0.6 (XOR-like, non-linear). */
function data(rng: Rng, n: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(2 * n),
    y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const a = rng.next() * 2 - 1,
      b = rng.next() * 2 - 1;
    x[2 * i] = a;
    x[2 * i + 1] = b;
    y[i] = a * a + b * b < 0.36 ? 1 : 0;
  }
  return { x, y };
}

test('an MLP learns a circle classifier (train loss falls below 0.1, held-out accuracy > 95%)', async () => {
  const rng = new Rng(3);
  const { params, f } = mlp(rng);
  const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0 });
  const train = data(rng, 256),
    heldOut = data(rng, 256);
  let loss = Infinity;
  for (let step = 0; step < 600; step++) {
    loss = await E.tidyAsync(async () => {
      const logits = E.reshape(f(E.tensor(train.x, [256, 2])), [256]);
      const y = E.tensor(train.y, [256]);
      // Binary cross-entropy with logits: softplus(z) - y z.
      const l = E.mean(E.sub(E.softplus(logits), E.mul(y, logits)));
      E.backward(l);
      opt.update(0.01);
      opt.zeroGrad();
      return l.item();
    });
  }
  assert.ok(loss < 0.1, `final train loss ${loss}`);
  const pred = Array.from(await tidy(() => E.reshape(f(E.tensor(heldOut.x, [256, 2])), [256])).toArray());
  const acc = pred.reduce((a, z, i) => a + ((z > 0 ? 1 : 0) === heldOut.y[i] ? 1 : 0), 0) / 256;
  assert.ok(acc > 0.95, `held-out accuracy ${acc}`);
});

test('1,000 training steps do not grow memory', async () => {
  const rng = new Rng(5);
  const { params, f } = mlp(rng);
  const opt = new Optimizer(params, DEFAULT_OPTIMIZER);
  const batch = data(rng, 64);
  const backend = E.getBackend();
  const step = (): void =>
    tidy(() => {
      const l = E.mean(E.square(E.reshape(f(E.tensor(batch.x, [64, 2])), [64])));
      E.backward(l);
      opt.update(1e-3);
      opt.zeroGrad();
    });
  for (let i = 0; i < 20; i++) step();
  const after20 = backend.liveBytes();
  for (let i = 0; i < 1000; i++) step();
  assert.equal(backend.liveBytes(), after20, 'live bytes after 1,020 steps differ from after 20');
  opt.dispose();
  for (const p of params) p.tensor.dispose();
});
