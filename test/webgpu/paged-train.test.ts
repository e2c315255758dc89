// Full fine-tuning (no LoRA) with tensors split across bindings, end to end: `tsdpo dpo --device
// webgpu` for 3 AdamW steps (weight decay, gradient clipping, 2 micro-batches per step, a
// checkpoint with the optimizer state at the end) on four fixture families, with
// TSDPO_WEBGPU_MAX_BINDING=30000: the embedding (5 pages), the LM head (tied or not), every MLP
// matrix, GPT-2's c_attn and wpe, their gradients and Adam moments are split into pages. Every
// logged metric, the final weights and the Adam state must equal the unsplit WebGPU run's, and the
// CPU run's, within float32 noise. One pair per micro-batch keeps the activations within a binding
// (a split activation is refused: test/webgpu/paged.test.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebGpuBackend } from '../../src/backend/webgpu/index.js';
import type { GpuStorage } from '../../src/backend/webgpu/storage.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/load.js';
import { readMetrics } from '../../src/train/trainer.js';
import { BIN, familyModel } from '../helpers/cli.js';
import { tempRoot } from '../train/tiny.js';
import { GPU } from './gpu.js';

const LIMIT = 30000;
const [LR, STEPS] = [1e-3, 3];

/** The parameters each family must have split under LIMIT (name -> pages). */
const SPLIT: Record<string, Record<string, number>> = {
  gpt2: {
    'transformer.wte.weight': 5, // [512, 64]: tied LM head
    'transformer.wpe.weight': 2, // [128, 64]
    'transformer.h.0.attn.c_attn.weight': 2, // [64, 192]
    'transformer.h.0.mlp.c_fc.weight': 3, // [64, 256]
    'transformer.h.1.mlp.c_proj.weight': 3, // [256, 64]
  },
  llama: {
    'model.embed_tokens.weight': 5,
    'lm_head.weight': 5, // untied
    'model.layers.0.mlp.gate_proj.weight': 2, // [160, 64]
    'model.layers.1.mlp.down_proj.weight': 2, // [64, 160]
  },
  qwen2: {
    'model.embed_tokens.weight': 5, // tied LM head
    'model.layers.0.mlp.up_proj.weight': 2,
    'model.layers.1.mlp.down_proj.weight': 2,
  },
  gemma3: {
    'model.embed_tokens.weight': 5, // tied LM head, scaled by sqrt(hidden) on the way in
    'model.layers.1.mlp.gate_proj.weight': 2,
  },
};

/** Float32 noise after 3 Adam steps: m and v relative to their largest value; weights absolute. */
const TOL = {
  metricRel: 1e-5,
  metricAbs: 2e-5,
  /** Adam turns float32 noise in a near-zero gradient into up to lr per step: a tenth of that. */
  weightAbs: 0.1 * LR * STEPS,
  stateRel: 2e-3,
};

describe('webgpu: full DPO fine-tuning with split weights, gradients and Adam state', { skip: GPU.skip }, () => {
  let root = '',
    data = '';
  before(() => {
    root = tempRoot();
    data = join(root, 'prefs.jsonl');
    const rows = Array.from({ length: 8 }, (_, i) => ({
      prompt: `q${i}?`,
      chosen: i % 2 ? ' yes' : ' ok',
      rejected: i % 2 ? ' no' : ' bad!',
    }));
    writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  });
  const saved = process.env.TSDPO_WEBGPU_MAX_BINDING;
  after(() => {
    if (saved === undefined) delete process.env.TSDPO_WEBGPU_MAX_BINDING;
    else process.env.TSDPO_WEBGPU_MAX_BINDING = saved;
  });

  /** `tsdpo dpo` on `model` into a new folder; `limit` forces the binding limit. */
  const train = (model: string, out: string, device: 'webgpu' | 'cpu', limit?: number): string => {
    const dir = join(root, out);
    const env = { ...process.env };
    delete env.TSDPO_WEBGPU_MAX_BINDING;
    if (limit) env.TSDPO_WEBGPU_MAX_BINDING = String(limit);
    const args = [
      ...['dpo', '--model_name_or_path', model, '--dataset', data, '--output_dir', dir, '--device', device],
      ...['--max_steps', String(STEPS), '--per_device_train_batch_size', '1', '--gradient_accumulation_steps', '2'],
      ...['--learning_rate', String(LR), '--lr_scheduler_type', 'constant', '--weight_decay', '0.01'],
      ...['--max_grad_norm', '0.5', '--logging_steps', '1', '--save_steps', String(STEPS), '--threads', '1'],
    ];
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });
    assert.equal(r.status, 0, `tsdpo dpo --device ${device}${limit ? ` (binding limit ${limit})` : ''}: ${r.stderr}`);
    return dir;
  };

  /** Asserts that run `got` equals run `want`: metrics per step, final weights, Adam m and v. */
  const compare = (label: string, got: string, want: string): Record<string, number> => {
    const worst: Record<string, number> = { metric: 0, weight: 0, state: 0 };
    const steps = (dir: string): Record<string, number>[] => readMetrics(dir).filter((l) => 'loss' in l);
    const [g, w] = [steps(got), steps(want)];
    assert.equal(g.length, STEPS, `${label}: logged steps`);
    w.forEach((line, i) => {
      for (const [k, e] of Object.entries(line)) {
        if (/per_second|runtime/.test(k)) continue; // timings
        const a = g[i][k];
        const d = Math.abs(a - e);
        worst.metric = Math.max(worst.metric, d / Math.max(1, Math.abs(e)));
        assert.ok(
          d <= TOL.metricAbs + TOL.metricRel * Math.abs(e),
          `${label}: step ${i + 1} ${k} is ${a}, expected ${e} (difference ${d})`,
        );
      }
    });
    const tensors = (dir: string, file: string): Map<string, Float32Array> =>
      new Map([...readSafetensors(join(dir, file)).tensors].map(([n, t]) => [n, t.toFloat32()]));
    for (const [file, kind] of [
      ['model.safetensors', 'weight'],
      [`checkpoint-${STEPS}/optimizer.safetensors`, 'state'],
    ] as const) {
      const [a, b] = [tensors(got, file), tensors(want, file)];
      assert.deepEqual([...a.keys()], [...b.keys()], `${label}: ${file} names`);
      for (const [name, e] of b) {
        const x = a.get(name)!;
        let diff = 0,
          mag = 0;
        for (let i = 0; i < e.length; i++) {
          diff = Math.max(diff, Math.abs(x[i] - e[i]));
          mag = Math.max(mag, Math.abs(e[i]));
        }
        const err = kind === 'weight' ? diff : diff / Math.max(mag, 1e-30);
        worst[kind] = Math.max(worst[kind], err);
        const tol = kind === 'weight' ? TOL.weightAbs : TOL.stateRel;
        assert.ok(
          err <= tol,
          `${label}: ${file} ${name}: ${kind === 'weight' ? 'max |difference|' : 'max |difference| / max |value|'} ${err.toExponential(2)} > ${tol}`,
        );
      }
    }
    return worst;
  };

  test(`TSDPO_WEBGPU_MAX_BINDING=${LIMIT} splits the fixtures' embeddings, LM heads and MLP matrices`, async () => {
    process.env.TSDPO_WEBGPU_MAX_BINDING = String(LIMIT);
    const be = await WebGpuBackend.create({ allowFallback: true });
    delete process.env.TSDPO_WEBGPU_MAX_BINDING;
    try {
      assert.equal(be.bindingLimit, LIMIT);
      for (const [arch, want] of Object.entries(SPLIT)) {
        const model = loadModel(familyModel(arch, join(root, `${arch}-model`)), { backend: be });
        for (const [name, pages] of Object.entries(want))
          assert.equal(
            (model.params.get(name)!.storage as GpuStorage).pages?.buffers.length,
            pages,
            `${arch}: ${name} pages`,
          );
        for (const t of model.params.values()) t.dispose();
      }
    } finally {
      be.destroy();
    }
  });

  for (const arch of Object.keys(SPLIT)) {
    test(`${arch}: 3 AdamW steps with split tensors equal the unsplit WebGPU run and the CPU run`, () => {
      const model = familyModel(arch, join(root, `${arch}-model`));
      const split = train(model, `${arch}-split`, 'webgpu', LIMIT),
        whole = train(model, `${arch}-whole`, 'webgpu'),
        cpu = train(model, `${arch}-cpu`, 'cpu');
      const a = compare(`${arch} split vs unsplit`, split, whole),
        b = compare(`${arch} split vs cpu`, split, cpu);
      console.log(
        `${arch}: split vs unsplit webgpu: metrics ${a.metric.toExponential(1)}, weights ${a.weight.toExponential(1)} (abs), ` +
          `Adam state ${a.state.toExponential(1)} (rel); split vs cpu: ${b.metric.toExponential(1)}, ${b.weight.toExponential(1)}, ${b.state.toExponential(1)}`,
      );
    });
  }
});
