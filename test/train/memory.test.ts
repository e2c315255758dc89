// Memory-saving paths that must not change the numbers: the chunked LM head (logits made and
// recomputed a few rows at a time) and activation checkpointing (gradient_checkpointing), checked
// against the transformers fixtures (test/fixtures/hf-tiny), bit for bit against the plain path,
// and by the CPU backend's peak live bytes.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as E from '../../src/core/index.js';
import type { CpuBackend } from '../../src/backend/cpu/backend.js';
import { initEngine } from '../../src/engine.js';
import { initModel } from '../../src/models/init.js';
import { loadModel, trainAll } from '../../src/models/load.js';
import { newAdapter } from '../../src/models/lora.js';
import type { CausalLM } from '../../src/models/model.js';
import { LoraDropout } from '../../src/nn/linear.js';
import { LOSSES, splitPairs } from '../../src/train/losses.js';
import { sequenceLogps, type LogpOptions, type TokenBatch } from '../../src/train/logps.js';
import type { NamedParam } from '../../src/train/optim.js';
import { ARCHS, FIXTURES, fixture, relError } from '../models/fixtures.js';
import { batchOf } from '../models/parity-suite.js';

let backend: CpuBackend;
before(async () => {
  backend = (await initEngine({ device: 'cpu' })) as CpuBackend;
});

/** The mean sigmoid DPO loss (beta 0.1), backpropagated; returns the loss and host copies of the gradients. */
async function dpoGrads(
  policy: CausalLM,
  reference: CausalLM,
  b: TokenBatch,
  params: NamedParam[],
  o: LogpOptions,
): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const loss = await E.tidyAsync(async () => {
    const ref = E.noGrad(() => E.tidy(() => sequenceLogps(reference, b, o).seq));
    const pol = sequenceLogps(policy, b, o);
    const l = E.mean(
      LOSSES.sigmoid.fn(splitPairs({ policy: pol.seq, ref, tokens: pol.tokens }, b.rows / 2), {
        beta: 0.1,
        labelSmoothing: 0,
      }).losses,
    );
    E.backward(l, { free: true });
    return l.item();
  });
  const grads = new Map<string, Float32Array>();
  for (const { name, tensor } of params) {
    grads.set(name, tensor.grad ? ((await tensor.grad.toArray()) as Float32Array) : new Float32Array(tensor.size));
    tensor.grad?.dispose();
    tensor.grad = null;
  }
  return { loss, grads };
}

function release(m: CausalLM): void {
  for (const t of m.params.values()) t.dispose();
}

for (const arch of ARCHS) {
  describe(`memory paths keep the numbers: ${arch}`, () => {
    test('chunked LM head (3 rows a chunk): log-probs and every gradient as transformers', async () => {
      const fx = fixture(arch),
        b = batchOf(fx);
      const policy = loadModel(`${FIXTURES}${arch}/policy`),
        reference = loadModel(`${FIXTURES}${arch}/reference`);
      const params = trainAll(policy);
      for (const headOnCompletion of [false, true]) {
        const o = { headOnCompletion, headChunkRows: 3 };
        const seq = await E.tidy(() => sequenceLogps(policy, b, o).seq).toArray();
        assert.ok(
          relError(seq, fx.tensors.get('policy.seq_logps')!.f32) <= 1e-4,
          `seq_logps (headOnCompletion ${headOnCompletion})`,
        );
        const { loss, grads } = await dpoGrads(policy, reference, b, params, o);
        assert.ok(
          Math.abs(loss - fx.json.losses.sigmoid) < 1e-5,
          `loss ${loss} vs transformers ${fx.json.losses.sigmoid}`,
        );
        for (const { name } of params) {
          const err = relError(grads.get(name)!, fx.tensors.get(`grad.${name}`)!.f32);
          assert.ok(
            err <= 1e-4,
            `grad.${name} (headOnCompletion ${headOnCompletion}): relative error ${err.toExponential(2)}`,
          );
        }
      }
      release(policy);
      release(reference);
    });

    test(
      'gradient checkpointing: every gradient bit-identical ' + 'to the plain backward, LoRA dropout included',
      async () => {
        const fx = fixture(arch),
          b = batchOf(fx);
        const reference = loadModel(`${FIXTURES}${arch}/reference`);
        for (const lora of [false, true]) {
          const policy = loadModel(`${FIXTURES}${arch}/policy`);
          const params = lora
            ? newAdapter(policy, { r: 4, alpha: 8, targetModules: 'all-linear', dropout: 0.2, seed: 1 }).params
            : trainAll(policy);
          // Non-zero B factors, so that A's gradients (and the dropout masks they see) count too.
          if (lora)
            for (const { name, tensor } of params)
              if (name.includes('lora_B'))
                tensor.backend.write(
                  tensor.storage,
                  Float32Array.from({ length: tensor.size }, (_, i) => Math.sin(i) * 0.1),
                );
          const run = async (on: boolean) => {
            policy.gradientCheckpointing = on;
            return await dpoGrads(policy, reference, b, params, {
              headOnCompletion: true,
              dropout: lora ? new LoraDropout(0.2, 1234) : null,
            });
          };
          const plain = await run(false),
            ckpt = await run(true);
          assert.equal(ckpt.loss, plain.loss);
          if (lora) {
            policy.gradientCheckpointing = false;
            const undropped = await dpoGrads(policy, reference, b, params, { headOnCompletion: true });
            assert.notEqual(
              plain.loss,
              undropped.loss,
              'the dropout passed with the forward options drops adapter inputs',
            );
          }
          if (!lora)
            assert.ok(
              Math.abs(plain.loss - fx.json.losses.sigmoid) < 1e-5,
              `loss ${plain.loss} vs transformers ${fx.json.losses.sigmoid}`,
            );
          for (const { name } of params)
            assert.deepEqual(ckpt.grads.get(name), plain.grads.get(name), `grad.${name} (lora ${lora})`);
          release(policy);
        }
        release(reference);
      },
    );
  });
}

describe('peak memory (CPU backend live bytes) of a DPO forward + backward', () => {
  // Activations dominate: 8 layers, 4 rows of 96 tokens, a 4,096-token vocabulary.
  const config = {
    model_type: 'qwen2',
    vocab_size: 4096,
    hidden_size: 64,
    intermediate_size: 256,
    num_hidden_layers: 8,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: true,
  };
  const R = 4,
    T = 96;
  const batch = (): TokenBatch => {
    const ids = Int32Array.from({ length: R * T }, (_, i) => (i * 7919) % 4096);
    const completion = Int32Array.from({ length: R * T }, (_, i) => (i % T >= 16 ? 1 : 0));
    return { rows: R, T, inputIds: ids, attentionMask: new Int32Array(R * T).fill(1), completionMask: completion };
  };
  /** Peak live bytes above the weights and gradients already held, and the loss. */
  async function peak(policy: CausalLM, reference: CausalLM, params: NamedParam[], o: LogpOptions): Promise<number> {
    backend.resetPeak();
    const base = backend.liveBytes();
    await dpoGrads(policy, reference, batch(), params, o);
    return backend.peak - base;
  }

  test('gradient checkpointing and the chunked head each lower it', async () => {
    const policy = initModel(config, 1),
      reference = initModel(config, 1);
    const params = trainAll(policy);
    // Gradients exist once allocated; a first pass makes the comparison fair.
    await peak(policy, reference, params, {});
    const plain = await peak(policy, reference, params, { headOnCompletion: false, headChunkRows: 1e9 });
    const chunked = await peak(policy, reference, params, { headOnCompletion: false, headChunkRows: 32 });
    policy.gradientCheckpointing = true;
    const both = await peak(policy, reference, params, { headOnCompletion: false, headChunkRows: 32 });
    const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;
    // Logits (R*T, V) f32 are 6 MiB, held for backward with their gradient: the chunked head saves most of that.
    const logits = R * T * 4096 * 4;
    assert.ok(
      plain - chunked >= logits,
      `chunked head: peak ${mib(chunked)} vs plain ${mib(plain)} (expected at least ${mib(logits)} less)`,
    );
    // Each layer keeps about 20 (R*T, C)-sized and (R*T, I)-sized activations; checkpointing keeps one per layer.
    assert.ok(both < chunked * 0.6, `checkpointing: peak ${mib(both)} vs ${mib(chunked)} without`);
    release(policy);
    release(reference);
  });
});

describe('memory report and precompute_ref_log_probs', () => {
  test('the report splits the peak; a precomputed reference is freed before training begins', async () => {
    const { join } = await import('node:path');
    const { defaultsOf, COMMON_OPTIONS, DPO_OPTIONS } = await import('../../src/train/config.js');
    const { runDpo } = await import('../../src/train/run.js');
    const { tempRoot, tinyModel, tinyPreferences } = await import('./tiny.js');
    const root = tempRoot();
    process.env.TSDPO_CACHE_DIR = join(root, 'cache');
    const model = await tinyModel(root, 3);
    const data = tinyPreferences(root, 8);
    const policyBytes = [
      ...initModel((await import('../../src/io/hf.js')).loadHfFolder(model).config, 0).params.values(),
    ].reduce((a, t) => {
      const n = t.size * 4;
      t.dispose();
      return a + n;
    }, 0);
    // Earlier runs of this process leave their models live: "other" in the report, and the baseline here.
    const run = async (name: string, over: Record<string, unknown>): Promise<[string, number]> => {
      const lines: string[] = [],
        baseline = backend.liveBytes();
      const cfg = {
        ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }),
        device: 'cpu',
        model_name_or_path: model,
        dataset: data,
        output_dir: join(root, name),
        max_steps: 2,
        per_device_train_batch_size: 4,
        logging_steps: 1,
        save_steps: 0,
        memory_report: true,
        ...over,
      };
      await runDpo(cfg as Parameters<typeof runDpo>[0], { quiet: true, log: (l) => lines.push(l) });
      const report = lines.filter((l) => l.startsWith('memory (cpu, step '));
      assert.equal(report.length, 2, `one report after step 1 and one at the end: ${lines.join('\n')}`);
      return [report[1], baseline];
    };
    const MiB = 2 ** 20;
    const num = (line: string, re: RegExp): number => Number(re.exec(line)![1]) * MiB;
    const [live, liveBase] = await run('live', { gradient_checkpointing: true });
    const [pre, preBase] = await run('pre', { precompute_ref_log_probs: true });
    for (const line of [live, pre]) {
      const peak = num(line, /peak ([\d.]+) MiB/),
        parts = [
          /weights ([\d.]+)/,
          /gradients ([\d.]+)/,
          /optimizer ([\d.]+)/,
          /logits ([\d.]+)/,
          /temporaries ([\d.]+)/,
          /other ([\d.]+)/,
        ].map((re) => (re.test(line) ? num(line, re) : 0));
      assert.ok(
        Math.abs(parts.reduce((a, b) => a + b, 0) - peak) <= 0.3 * MiB,
        `the parts add up to the peak: ${line}`,
      );
      assert.ok(
        Math.abs(num(line, /policy ([\d.]+)/) - policyBytes) <= 0.1 * MiB,
        `policy weights ${policyBytes} bytes: ${line}`,
      );
      assert.ok(
        Math.abs(num(line, /gradients ([\d.]+)/) - policyBytes) <= 0.1 * MiB &&
          Math.abs(num(line, /optimizer ([\d.]+)/) - 2 * policyBytes) <= 0.1 * MiB,
        `AdamW: one gradient and two moments per weight: ${line}`,
      );
    }
    assert.ok(Math.abs(num(live, /reference ([\d.]+)/) - policyBytes) <= 0.1 * MiB, `a frozen reference copy: ${live}`);
    assert.ok(num(live, /began ([\d.]+)/) - liveBase >= 2 * policyBytes - 0.1 * MiB, live);
    assert.equal(num(pre, /reference ([\d.]+)/), 0, pre);
    assert.ok(
      num(pre, /began ([\d.]+)/) - preBase <= policyBytes + 0.1 * MiB,
      `only the policy is live when training begins: ${pre}`,
    );
    delete process.env.TSDPO_CACHE_DIR;
  });
});
