// The DPO loss family against the values transformers/TRL formulas give on the fixture batch
// (test/fixtures/hf-tiny/*/expected.json, from the fixture's sequence log-probs).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { LOSSES, splitPairs, type LossInputs, type LossName } from '../../src/train/losses.js';
import { ARCHS, fixture } from '../models/fixtures.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

/** Fixture name -> (our loss, options). */
const CASES: [string, LossName, { beta: number; labelSmoothing: number; simpoGamma: number }][] = [
  ['sigmoid', 'sigmoid', { beta: 0.1, labelSmoothing: 0, simpoGamma: 0 }],
  // TRL 1.13's sigmoid ignores label_smoothing (the fixture's cDPO value is from an older TRL).
  ['sigmoid', 'sigmoid', { beta: 0.1, labelSmoothing: 0.1, simpoGamma: 0 }],
  ['robust_0.1', 'robust', { beta: 0.1, labelSmoothing: 0.1, simpoGamma: 0 }],
  ['hinge', 'hinge', { beta: 0.1, labelSmoothing: 0, simpoGamma: 0 }],
  ['ipo', 'ipo', { beta: 0.1, labelSmoothing: 0, simpoGamma: 0 }],
  ['reference_free_sigmoid', 'reference_free', { beta: 0.1, labelSmoothing: 0, simpoGamma: 0 }],
  ['simpo_beta2_gamma0.5', 'simpo', { beta: 2, labelSmoothing: 0, simpoGamma: 0.5 }],
];

for (const arch of ARCHS) {
  test(`loss family on the ${arch} fixture batch`, async () => {
    const fx = fixture(arch);
    const pol = fx.tensors.get('policy.seq_logps')!.f32,
      ref = fx.tensors.get('reference.seq_logps')!.f32;
    const cm = fx.tensors.get('completion_mask')!.f32,
      [R, T] = fx.tensors.get('completion_mask')!.shape;
    const lens = Array.from({ length: R }, (_, r) => cm.slice(r * T + 1, (r + 1) * T).reduce((a, b) => a + b, 0));
    for (const [fixtureName, loss, opts] of CASES) {
      const value = await E.tidy(() => {
        const t = (xs: number[]): E.Tensor => E.tensor(Float32Array.from(xs));
        const x: LossInputs = {
          policyChosen: t([pol[0], pol[1]]),
          policyRejected: t([pol[2], pol[3]]),
          refChosen: t([ref[0], ref[1]]),
          refRejected: t([ref[2], ref[3]]),
          chosenLengths: t(lens.slice(0, 2)),
          rejectedLengths: t(lens.slice(2)),
        };
        return E.mean(LOSSES[loss].fn(x, opts).losses);
      }).item();
      const want = fx.json.losses[fixtureName];
      assert.ok(Math.abs(value - want) <= 1e-4 * Math.max(1, Math.abs(want)), `${fixtureName}: ${value} vs ${want}`);
    }
  });
}

test('TRL metrics from the fixture log-probs and the rewards the loss returns', async () => {
  const { metricsOf } = await import('../../src/train/dpo.js');
  for (const arch of ARCHS) {
    const fx = fixture(arch);
    const pol = fx.tensors.get('policy.seq_logps')!.f32,
      ref = fx.tensors.get('reference.seq_logps')!.f32;
    const out = LOSSES.sigmoid.fn(splitPairs({ policy: E.tensor(pol), ref: E.tensor(ref), tokens: [1, 1, 1, 1] }, 2), {
      beta: 0.1,
      labelSmoothing: 0,
    });
    const rewards = { chosen: await out.chosenRewards.toArray(), rejected: await out.rejectedRewards.toArray() };
    const m = metricsOf(2, rewards, pol, null);
    for (const [k, want] of Object.entries(fx.json.metrics as Record<string, number>)) {
      assert.ok(Math.abs(m[k] - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${arch} ${k}: ${m[k]} vs ${want}`);
    }
  }
});
