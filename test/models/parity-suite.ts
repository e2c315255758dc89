// The parity suite with Hugging Face transformers 5.17 for every family (fixtures in
// test/fixtures/hf-tiny), run on each backend (parity.test.ts: CPU, webgpu/models.test.ts):
// logits, token and sequence log-probs, every parameter's gradient of the sigmoid DPO loss, one
// AdamW step, the bf16 checkpoint's logits and greedy generation with a KV cache.
// A failure names the tensor and the relative error; errors ~1e-7 are float32 noise, larger
// ones usually mean a config field is read wrongly (check the family file in src/models/).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { generate } from '../../src/eval/generate.js';
import { loadModel, trainAll } from '../../src/models/load.js';
import { forward, type CausalLM } from '../../src/models/model.js';
import { batchSigmoidLoss } from '../../src/train/dpo.js';
import { sequenceLogps, type TokenBatch } from '../../src/train/logps.js';
import { DEFAULT_OPTIMIZER, Optimizer } from '../../src/train/optim.js';
import { ARCHS, FIXTURES, fixture, relError, type Fixture } from './fixtures.js';

const TOL = 1e-4;

export function batchOf(fx: Fixture): TokenBatch {
  const ids = fx.tensors.get('input_ids')!;
  const [rows, T] = ids.shape;
  return {
    rows,
    T,
    inputIds: ids.i32(),
    attentionMask: fx.tensors.get('attention_mask')!.i32(),
    completionMask: fx.tensors.get('completion_mask')!.f32,
  };
}

function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol = TOL): void {
  const err = relError(actual, expected);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

export interface SuiteOptions {
  /** Backend name for the test titles. */
  label: string;
  /** Skip every test (with this reason) when the backend is missing. */
  skip?: string | false;
  archs?: readonly string[];
}

export function parityTests(o: SuiteOptions): void {
  for (const arch of o.archs ?? ARCHS) {
    describe(`${o.label} parity: ${arch}`, { skip: o.skip }, () => {
      let policy: CausalLM, reference: CausalLM, fx: Fixture, batch: TokenBatch;
      before(() => {
        policy = loadModel(`${FIXTURES}${arch}/policy`);
        reference = loadModel(`${FIXTURES}${arch}/reference`);
        fx = fixture(arch);
        batch = batchOf(fx);
      });

      test('logits', async () => {
        const logits = await E.tidy(() =>
          forward(policy, E.tensor(batch.inputIds, [batch.rows, batch.T], 'i32'), {
            attentionMask: E.tensor(Float32Array.from(batch.attentionMask), [batch.rows, batch.T]),
          }),
        ).toArray();
        expectClose('policy.logits', logits, fx.tensors.get('policy.logits')!.f32);
      });

      test('token and sequence log-probs, policy and reference', async () => {
        const { rows: R, T } = batch;
        for (const [name, model] of [
          ['policy', policy],
          ['reference', reference],
        ] as const) {
          const tokenLogps = await E.tidy(() => {
            const logits = forward(model, E.tensor(batch.inputIds, [R, T], 'i32'), {
              attentionMask: E.tensor(Float32Array.from(batch.attentionMask), [R, T]),
            });
            const next = E.narrow(E.tensor(batch.inputIds, [R, T], 'i32'), 1, 1, T - 1);
            return E.logSoftmaxGather(E.narrow(logits, 1, 0, T - 1), next);
          }).toArray();
          expectClose(`${name}.token_logps`, tokenLogps, fx.tensors.get(`${name}.token_logps`)!.f32);
          for (const headOnCompletion of [false, true]) {
            const seq = await E.tidy(() => sequenceLogps(model, batch, { headOnCompletion }).seq).toArray();
            expectClose(
              `${name}.seq_logps (headOnCompletion ${headOnCompletion})`,
              seq,
              fx.tensors.get(`${name}.seq_logps`)!.f32,
            );
          }
        }
      });

      for (const headOnCompletion of [false, true]) {
        test(
          `gradient of the sigmoid DPO loss for every parameter (LM head on ` +
            `${headOnCompletion ? 'completion positions' : 'all positions'})`,
          async () => {
            const params = trainAll(policy);
            try {
              const loss = await E.tidyAsync(async () => {
                const l = batchSigmoidLoss(policy, reference, batch, { headOnCompletion });
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
              const expectedCount = [...fx.tensors.keys()].filter((k) => k.startsWith('grad.')).length;
              assert.equal(checked, expectedCount, 'every parameter with a fixture gradient was checked');
            } finally {
              for (const { tensor } of params) {
                tensor.grad?.dispose();
                tensor.grad = null;
                tensor.requiresGrad = false;
              }
            }
          },
        );
      }

      test('one AdamW step on the fixture gradients equals torch.optim.AdamW (lr 1e-3, wd 0.01)', async () => {
        // The fixture's gradients are fed in (ours match them to 1e-4, see above), because Adam's
        // first step moves each weight by ~lr * sign(g): gradients that are zero in exact arithmetic
        // (e.g. key biases) are float noise of either sign in both implementations.
        const model = loadModel(`${FIXTURES}${arch}/policy`);
        const params = trainAll(model);
        for (const { name, tensor } of params)
          tensor.grad = E.keep(E.tensor(fx.tensors.get(`grad.${name}`)!.f32, tensor.shape));
        const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
        opt.update(1e-3);
        for (const { name, tensor } of params) {
          expectClose(`adamw_step1.${name}`, await tensor.toArray(), fx.tensors.get(`adamw_step1.${name}`)!.f32, 1e-6);
        }
        opt.dispose();
        for (const { tensor } of params) tensor.dispose();
      });

      test('bf16 checkpoint: weights load converted, logits close to the bf16 model', async () => {
        const bf = loadModel(`${FIXTURES}${arch}/policy-bf16`);
        const logits = await E.tidy(() =>
          forward(bf, E.tensor(batch.inputIds, [batch.rows, batch.T], 'i32'), {
            attentionMask: E.tensor(Float32Array.from(batch.attentionMask), [batch.rows, batch.T]),
          }),
        ).toArray();
        // transformers ran this model in bfloat16 arithmetic; we run the same weights in float32,
        // so agreement is to bfloat16 precision (8 bits of mantissa), not 1e-4.
        expectClose(
          'policy_bf16.logits',
          logits,
          fixture(arch, 'expected-bf16.safetensors').tensors.get('policy_bf16.logits')!.f32,
          3e-2,
        );
        for (const t of bf.params.values()) t.dispose();
      });

      test('greedy generation with a KV cache', async () => {
        const g = fx.json.generate;
        const out = await generate(policy, [g.prompt], { maxNewTokens: g.max_new_tokens });
        assert.deepEqual([...g.prompt, ...out.tokens[0]], g.greedy_output);
      });
    });
  }
}
