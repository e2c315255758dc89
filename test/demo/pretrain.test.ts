// `tsdpo pretrain`'s loop is the shared trainer (src/train/trainer.ts) running PretrainObjective.
// Checked here against a loop written out step by step on the host (float64), each step from the
// weights the trainer had before it: the block stream running on across epoch ends
// (permutation(count, seed + epoch)), each step's mean next-token loss from the logits, global-norm
// clipping, warmup + cosine decay to learning_rate * min_lr_ratio, and torch's AdamW with weight
// decay on matrices only. Shape letters: B blocks, T tokens, V vocabulary.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { affine, backward, logSoftmaxGather, sum, tensor, tidyAsync } from '../../src/core/index.js';
import {
  blockBatch,
  gpt2Config,
  packBlocks,
  permutation,
  pretrainTrainConfig,
  PretrainObjective,
  PRETRAIN_OPTIONS,
  type Blocks,
  type PretrainConfig,
} from '../../src/demo/pretrain.js';
import { initEngine } from '../../src/engine.js';
import { initModel } from '../../src/models/init.js';
import { trainAll } from '../../src/models/load.js';
import { forward, type CausalLM } from '../../src/models/model.js';
import { defaultsOf } from '../../src/train/config.js';
import { train } from '../../src/train/trainer.js';

before(async () => {
  await initEngine({ device: 'cpu', threads: 1 });
});

const V = 40;
const cfg: PretrainConfig = {
  ...defaultsOf(PRETRAIN_OPTIONS),
  n_layer: 1,
  n_embd: 16,
  n_head: 2,
  n_positions: 8,
  batch_size: 3,
  max_steps: 7,
  learning_rate: 0.02,
  min_lr_ratio: 0.25,
  warmup_steps: 2,
  weight_decay: 0.1,
  adam_beta2: 0.95,
  max_grad_norm: 0.5,
  eval_steps: 3,
  eval_blocks: 2,
  seed: 4,
};

function tokens(n: number, seed: number): Int32Array {
  let s = seed;
  return Int32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % V);
}

/** Mean NLL (float64, from the logits) of blocks `which` under `model`. */
async function hostLoss(model: CausalLM, b: Blocks, which: number[]): Promise<number> {
  const { ids, targets } = blockBatch(b, which);
  const B = which.length,
    T = b.T;
  const logits = await tidyAsync(() => forward(model, tensor(ids, [B, T], 'i32')).toArray()); // (B, T, V)
  let nll = 0;
  for (let r = 0; r < B * T; r++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[r * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[r * V + v] - max);
    nll += max + Math.log(z) - logits[r * V + targets[r]];
  }
  return nll / (B * T);
}

test('pretrain on the shared loop = a step-by-step loop (stream order, losses, clipping, cosine floor, AdamW on matrices only)', async () => {
  const T = cfg.n_positions;
  const train_ = packBlocks(tokens(5 * T + 1, 7), T); // 5 blocks: a step of 3 runs on into the next epoch
  const held = packBlocks(tokens(3 * T + 1, 8), T);
  assert.equal(train_.count, 5);
  const config = gpt2Config(cfg, V, 0);

  const model = initModel(config, cfg.seed);
  const params = trainAll(model);
  const stepLoss: number[] = [];
  // The weights before the first step and after each (read once the optimizer has stepped).
  const read = () => Promise.all(params.map(async (p) => Float32Array.from(await p.tensor.toArray())));
  const snapshots = [await read()];
  const objective = new (class extends PretrainObjective {
    async afterStep(): Promise<void> {
      snapshots.push(await read());
    }
  })(model, params, train_, held, cfg);
  const run = await train(pretrainTrainConfig(cfg), objective, {
    quiet: true,
    log: () => {},
    onStep: (_s, _t, loss) => stepLoss.push(loss),
  });
  assert.equal(run.stopped, undefined);
  assert.equal(run.steps, cfg.max_steps);

  // The same run written out: torch's AdamW (decoupled decay, bias corrections) in float64, each step
  // from the trainer's weights before it (so that float32 rounding does not compound over steps).
  const ref = initModel(config, cfg.seed);
  const refParams = trainAll(ref);
  const m = refParams.map((p) => new Float64Array(p.tensor.size)),
    v = refParams.map((p) => new Float64Array(p.tensor.size));
  const [beta1, beta2, eps] = [0.9, cfg.adam_beta2, 1e-8];
  const stream: number[] = [];
  for (let e = 0; stream.length < cfg.max_steps * cfg.batch_size; e++)
    stream.push(...permutation(train_.count, cfg.seed + e));
  const evals: Record<number, number> = {};
  let lr = 0,
    norm = 0,
    worst = 0,
    where = '';
  for (let step = 0; step < cfg.max_steps; step++) {
    const w = snapshots[step].map((x) => Float64Array.from(x));
    refParams.forEach((p, i) => p.tensor.backend.write(p.tensor.storage, snapshots[step][i]));
    const which = stream.slice(step * cfg.batch_size, (step + 1) * cfg.batch_size);
    const loss = await hostLoss(ref, train_, which);
    assert.ok(
      Math.abs(loss - stepLoss[step]) < 1e-5,
      `step ${step + 1}: loss ${stepLoss[step]} from the loop, ${loss} written out (blocks ${which.join(', ')})`,
    );
    const { ids, targets } = blockBatch(train_, which);
    await tidyAsync(async () => {
      const logits = forward(ref, tensor(ids, [cfg.batch_size, T], 'i32'));
      const nll = sum(logSoftmaxGather(logits, tensor(targets, [cfg.batch_size, T], 'i32')));
      backward(affine(nll, -1 / (cfg.batch_size * T)));
    });
    const g = await Promise.all(refParams.map(async (p) => Float64Array.from(await p.tensor.grad!.toArray())));
    norm = Math.sqrt(g.reduce((a, x) => a + x.reduce((b, y) => b + y * y, 0), 0));
    const clip = Math.min(1, cfg.max_grad_norm / (norm + 1e-6));
    const floor = cfg.min_lr_ratio;
    const progress = (step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps);
    lr =
      step < cfg.warmup_steps
        ? (cfg.learning_rate * step) / cfg.warmup_steps
        : cfg.learning_rate * (floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    const t = step + 1;
    refParams.forEach((p, i) => {
      const decay = p.tensor.ndim >= 2 ? cfg.weight_decay : 0; // matrices only: not biases, not LayerNorm gains
      for (let k = 0; k < w[i].length; k++) {
        const gk = g[i][k] * clip;
        w[i][k] *= 1 - lr * decay;
        m[i][k] = beta1 * m[i][k] + (1 - beta1) * gk;
        v[i][k] = beta2 * v[i][k] + (1 - beta2) * gk * gk;
        const denom = Math.sqrt(v[i][k]) / Math.sqrt(1 - beta2 ** t) + eps;
        w[i][k] -= (lr / (1 - beta1 ** t)) * (m[i][k] / denom);
      }
      p.tensor.grad!.dispose();
      p.tensor.grad = null;
      for (let k = 0; k < w[i].length; k++) {
        const d = Math.abs(snapshots[t][i][k] - w[i][k]);
        if (d > worst) [worst, where] = [d, `step ${t}, ${p.name}[${k}]`];
      }
      p.tensor.backend.write(p.tensor.storage, snapshots[t][i]);
    });
    if (t % cfg.eval_steps === 0 && t < cfg.max_steps) evals[t] = await hostLoss(ref, held, [0, 1]);
  }
  assert.ok(worst < 1e-6, `weights after a step: max |loop - written out| = ${worst} at ${where}`);

  // The trainer's last line: the rate and the gradient norm of the last step.
  const last = run.history.filter((h) => 'loss' in h).at(-1)!;
  assert.ok(Math.abs(last.learning_rate - lr) < 1e-12, `learning_rate ${last.learning_rate}, written out ${lr}`);
  assert.ok(Math.abs(last.grad_norm - norm) < 1e-4 * norm, `grad_norm ${last.grad_norm}, written out ${norm}`);
  // The periodic held-out loss (first eval_blocks blocks) at steps 3 and 6; none at the last step.
  const got = Object.fromEntries(run.history.filter((h) => 'eval_loss' in h).map((h) => [h.step, h.eval_loss]));
  assert.deepEqual(Object.keys(got), Object.keys(evals));
  for (const s of Object.keys(evals))
    assert.ok(Math.abs(got[s] - evals[+s]) < 1e-5, `eval_loss at step ${s}: ${got[s]}, written out ${evals[+s]}`);
});
