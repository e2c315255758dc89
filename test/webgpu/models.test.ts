// Parity with Hugging Face transformers on the WebGPU backend, for every family of
// test/fixtures/hf-tiny (gpt2, and the Llama-style ones with grouped-query heads, sliding windows
// and softcaps): logits, token and sequence log-probs, every parameter's gradient of the sigmoid
// DPO loss, one AdamW step; the same 1e-4 rule as test/models/parity.test.ts. Also checks that a
// training step reads nothing back from the GPU except the logged loss.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { loadModel, trainAll } from '../../src/models/load.js';
import { forward, type CausalLM } from '../../src/models/model.js';
import { LOSSES } from '../../src/train/losses.js';
import { sequenceLogps, type TokenBatch } from '../../src/train/logps.js';
import { DEFAULT_OPTIMIZER, Optimizer, clipGradNorm } from '../../src/train/optim.js';
import { ARCHS, FIXTURES, fixture, relError, type Fixture } from '../models/fixtures.js';
import { GPU, gpu } from './gpu.js';

const TOL = 1e-4;

function batchOf(fx: Fixture): TokenBatch {
  const ids = fx.tensors.get('input_ids')!;
  const [rows, T] = ids.shape;
  return {
    rows, T, inputIds: ids.i32(), attentionMask: fx.tensors.get('attention_mask')!.i32(),
    completionMask: fx.tensors.get('completion_mask')!.f32,
  };
}

function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol = TOL): void {
  const err = relError(actual, expected);
  assert.ok(err <= tol, `${what} on WebGPU: relative error ${err.toExponential(2)} > ${tol}`);
}

/** Sigmoid DPO loss (beta 0.1), as in test/models/parity.test.ts. */
function dpoLoss(policy: CausalLM, reference: CausalLM, b: TokenBatch, headOnCompletion: boolean): E.Tensor {
  const P = b.rows / 2;
  const pol = sequenceLogps(policy, b, { headOnCompletion });
  const ref = E.noGrad(() => sequenceLogps(reference, b, { headOnCompletion }));
  const lens = E.tensor(Float32Array.from(pol.tokens));
  const out = LOSSES.sigmoid({
    policyChosen: E.narrow(pol.seq, 0, 0, P), policyRejected: E.narrow(pol.seq, 0, P, P),
    refChosen: E.narrow(ref.seq, 0, 0, P), refRejected: E.narrow(ref.seq, 0, P, P),
    chosenLengths: E.narrow(lens, 0, 0, P), rejectedLengths: E.narrow(lens, 0, P, P),
  }, { beta: 0.1, labelSmoothing: 0, simpoGamma: 0 });
  return E.mean(out.losses);
}

before(() => { if (GPU.backend) E.setBackend(gpu()); });

for (const arch of ARCHS) {
  describe(`webgpu parity: ${arch}`, { skip: GPU.skip }, () => {
    let policy: CausalLM, reference: CausalLM, fx: Fixture, batch: TokenBatch;
    before(() => {
      policy = loadModel(`${FIXTURES}${arch}/policy`);
      reference = loadModel(`${FIXTURES}${arch}/reference`);
      fx = fixture(arch);
      batch = batchOf(fx);
    });

    test('logits', async () => {
      const logits = await E.tidyAsync(() => forward(policy, E.tensor(batch.inputIds, [batch.rows, batch.T], 'i32'), {
        attentionMask: E.tensor(Float32Array.from(batch.attentionMask), [batch.rows, batch.T]),
      }).toArray());
      expectClose('policy.logits', logits, fx.tensors.get('policy.logits')!.f32);
    });

    test('sequence log-probs, policy and reference', async () => {
      for (const [name, model] of [['policy', policy], ['reference', reference]] as const) {
        for (const headOnCompletion of [false, true]) {
          const seq = await E.tidyAsync(() => sequenceLogps(model, batch, { headOnCompletion }).seq.toArray());
          expectClose(`${name}.seq_logps (headOnCompletion ${headOnCompletion})`, seq, fx.tensors.get(`${name}.seq_logps`)!.f32);
        }
      }
    });

    for (const headOnCompletion of [false, true]) {
      test(`gradient of the sigmoid DPO loss for every parameter (LM head on ${headOnCompletion ? 'completion positions' : 'all positions'})`, async () => {
        const params = trainAll(policy);
        try {
          const loss = await E.tidyAsync(async () => {
            const l = dpoLoss(policy, reference, batch, headOnCompletion);
            E.backward(l);
            return l.item();
          });
          assert.ok(Math.abs(loss - fx.json.losses.sigmoid) < 1e-5, `loss ${loss} vs ${fx.json.losses.sigmoid}`);
          let checked = 0;
          for (const { name, tensor } of params) {
            const expected = fx.tensors.get(`grad.${name}`);
            assert.ok(expected, `no fixture gradient for ${name}`);
            assert.ok(tensor.grad, `${name} got no gradient`);
            expectClose(`grad.${name}`, await tensor.grad.toArray(), expected.f32);
            checked++;
          }
          assert.equal(checked, [...fx.tensors.keys()].filter((k) => k.startsWith('grad.')).length);
        } finally {
          for (const { tensor } of params) {
            tensor.grad?.dispose();
            tensor.grad = null;
            tensor.requiresGrad = false;
          }
        }
      });
    }

    test('one AdamW step on the fixture gradients equals torch.optim.AdamW (lr 1e-3, wd 0.01)', async () => {
      const model = loadModel(`${FIXTURES}${arch}/policy`);
      const params = trainAll(model);
      for (const { name, tensor } of params) tensor.grad = E.keep(E.tensor(fx.tensors.get(`grad.${name}`)!.f32, tensor.shape));
      const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
      opt.update(1e-3);
      for (const { name, tensor } of params) {
        expectClose(`adamw_step1.${name}`, await tensor.toArray(), fx.tensors.get(`adamw_step1.${name}`)!.f32, 1e-6);
      }
      opt.dispose();
      for (const { tensor } of params) tensor.dispose();
    });
  });
}

describe('webgpu: a DPO training step reads back only what is logged', { skip: GPU.skip }, () => {
  test('forward, backward, gradient norm and AdamW record GPU work without reading it', async () => {
    const policy = loadModel(`${FIXTURES}llama/policy`), reference = loadModel(`${FIXTURES}llama/reference`);
    const batch = batchOf(fixture('llama'));
    const params = trainAll(policy);
    const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
    const stats = gpu().rt.stats;
    const before0 = { ...stats };
    const loss = E.tidy(() => {
      const l = dpoLoss(policy, reference, batch, true);
      E.backward(l);
      return l;
    });
    opt.update(1e-3);
    assert.equal(stats.reads, before0.reads, 'no readback during forward, backward and the optimizer step');
    const norm = await clipGradNorm(params, 1); // one scalar
    const value = await loss.item(); // one scalar
    assert.equal(stats.reads - before0.reads, 2);
    assert.ok(stats.dispatches > before0.dispatches && stats.submits - before0.submits < stats.dispatches - before0.dispatches);
    assert.ok(Number.isFinite(norm) && Number.isFinite(value));
    loss.dispose();
    opt.dispose();
  });

  test('repeated steps allocate nothing new: live memory and pooled buffers stay flat', async () => {
    const policy = loadModel(`${FIXTURES}gpt2/policy`), reference = loadModel(`${FIXTURES}gpt2/reference`);
    const batch = batchOf(fixture('gpt2'));
    const params = trainAll(policy);
    const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
    const be = gpu();
    const step = async (): Promise<void> => {
      const loss = E.tidy(() => {
        const l = dpoLoss(policy, reference, batch, false);
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
    const live = be.liveBytes(), pooled = be.rt.storage.totalBytes;
    await step();
    await step();
    assert.equal(be.liveBytes(), live, 'live bytes after a step');
    assert.equal(be.rt.storage.totalBytes, pooled, 'GPU buffers created by later steps');
    opt.dispose();
  });
});
