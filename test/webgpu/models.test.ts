// Parity with Hugging Face transformers on the WebGPU backend: the suite of
// test/models/parity-suite.ts for every family (gpt2, and the Llama-style ones with grouped-query
// heads, sliding windows and softcaps). Also checks that a training step reads nothing back from
// the GPU except the logged loss, and that repeated steps allocate nothing new.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { loadModel, trainAll } from '../../src/models/load.js';
import { batchSigmoidLoss } from '../../src/train/dpo.js';
import { DEFAULT_OPTIMIZER, Optimizer, clipGradNorm } from '../../src/train/optim.js';
import { FIXTURES, fixture } from '../models/fixtures.js';
import { batchOf, parityTests } from '../models/parity-suite.js';
import { GPU, gpu } from './gpu.js';

before(() => {
  if (GPU.backend) E.setBackend(gpu());
});

parityTests({ label: 'webgpu', skip: GPU.skip });

describe('webgpu: a DPO training step reads back only what is logged', { skip: GPU.skip }, () => {
  test('forward, backward, gradient norm and AdamW record GPU work without reading it', async () => {
    const policy = loadModel(`${FIXTURES}llama/policy`),
      reference = loadModel(`${FIXTURES}llama/reference`);
    const batch = batchOf(fixture('llama'));
    const params = trainAll(policy);
    const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
    const stats = gpu().rt.stats;
    const before0 = { ...stats };
    const loss = E.tidy(() => {
      const l = batchSigmoidLoss(policy, reference, batch, { headOnCompletion: true });
      E.backward(l);
      return l;
    });
    opt.update(1e-3);
    assert.equal(stats.reads, before0.reads, 'no readback during forward, backward and the optimizer step');
    const norm = await clipGradNorm(params, 1); // one scalar
    const value = await loss.item(); // one scalar
    assert.equal(stats.reads - before0.reads, 2);
    assert.ok(
      stats.dispatches > before0.dispatches && stats.submits - before0.submits < stats.dispatches - before0.dispatches,
    );
    assert.ok(Number.isFinite(norm) && Number.isFinite(value));
    loss.dispose();
    opt.dispose();
  });

  test('repeated steps allocate nothing new: live memory and pooled buffers stay flat', async () => {
    const policy = loadModel(`${FIXTURES}gpt2/policy`),
      reference = loadModel(`${FIXTURES}gpt2/reference`);
    const batch = batchOf(fixture('gpt2'));
    const params = trainAll(policy);
    const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
    const be = gpu();
    const step = async (): Promise<void> => {
      const loss = E.tidy(() => {
        const l = batchSigmoidLoss(policy, reference, batch);
        E.backward(l);
        return l;
      });
      opt.update(1e-3);
      opt.zeroGrad();
      await loss.item();
      loss.dispose();
    };
    await step(); // creates the optimizer state
    await step();
    const live = be.liveBytes(),
      pooled = be.rt.storage.totalBytes;
    await step();
    await step();
    assert.equal(be.liveBytes(), live, 'live bytes after a step');
    assert.equal(be.rt.storage.totalBytes, pooled, 'GPU buffers created by later steps');
    opt.dispose();
  });
});
