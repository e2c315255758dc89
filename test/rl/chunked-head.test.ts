// The RL methods' LM head in chunks of rows (train/chunked-head.ts): GRPO, RLOO and PPO runs whose
// head is forced to a few rows a chunk hold one chunk's logits at a time (the head's own account
// and the CPU backend's peak live bytes) and give the metrics, log-probs and weights of the same
// runs at the default chunk size, where the whole [rows x V] logits fit one chunk.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { CpuBackend } from '../../src/backend/cpu/backend.js';
import { initEngine } from '../../src/engine.js';
import { loadModel, trainAll } from '../../src/models/load.js';
import { policyParams, valueFromPolicy, valueParams } from '../../src/rl/models.js';
import { ppoEpochs, rolloutPhase, updateMetrics, type PpoUpdateOptions } from '../../src/rl/ppo.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { headChunkRows, headMemory } from '../../src/train/chunked-head.js';
import { decays, Optimizer } from '../../src/train/optim.js';
import { tempRoot, tinyModel } from '../train/tiny.js';
import { BS, EOS, runFixed, TC, V, writeFixture } from './fixed-grpo.js';

/** Rows a forced chunk holds: fewer than any forward's rows here, and dividing none of them. */
const CHUNK = 5;
/** Bytes of one (rows, V) float32 tensor. */
const bytes = (rows: number): number => rows * V * 4;
/** Metrics that measure time, not the computation. */
const TIMING = /time|per_second|^elapsed/;

let backend: CpuBackend, root: string, model: string;
before(async () => {
  backend = (await initEngine({ device: 'cpu', threads: 1 })) as CpuBackend;
  root = tempRoot();
  await writeFixture(root); // the tiny GPT-2 in root/model, GRPO's prompts and reward
  model = join(root, 'model');
});

/**
 * |a - b| within float32 rounding of values of a's size. Before the first optimizer step the two runs
 * agree bit for bit; after it the head's weight gradient, summed chunk by chunk, differs in its last
 * bits (observed: up to 5e-7 on log-probs and weights after 2 steps).
 */
function close(a: number, b: number, what: string, tol = 1e-6): void {
  if (Number.isNaN(a)) return assert.ok(Number.isNaN(b), `${what}: unchunked NaN, chunked ${b}`);
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(a)), `${what}: unchunked ${a}, chunked ${b}`);
}

function closeArrays(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-6): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) close(a[i], b[i], `${what}[${i}]`, tol);
}

/**
 * Runs fn with the backend's and the head's peaks reset: the peak live bytes above those live before, and the head's
 * peak.
 */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; peak: number; head: number }> {
  headMemory.peakBytes = 0;
  backend.resetPeak();
  const base = backend.liveBytes();
  const value = await fn();
  return { value, peak: backend.peak - base, head: headMemory.peakBytes };
}

describe('GRPO / RLOO: the chunked head holds one chunk of logits and keeps the numbers', () => {
  for (const method of ['grpo', 'rloo'] as const) {
    test(
      `${method}: chunks of ${CHUNK} rows vs the whole ` + `logits (temperature 0.7, beta 0.1, num_iterations 2)`,
      async () => {
        const run = (name: string, headChunkRows?: number) =>
          measured(() => runFixed(method, root, join(root, `${method}-${name}`), { headChunkRows }));
        const whole = await run('whole');
        const chunked = await run('chunked', CHUNK);
        // Rows of a training forward: BS completions x the longest completion (TC tokens).
        const N = BS * TC;
        assert.ok(headChunkRows(V) >= N, `the default chunk (${headChunkRows(V)} rows) holds all ${N} rows`);
        // The head's account: a chunk's logits, their copy divided by the temperature, and their gradient.
        assert.equal(whole.head, 3 * bytes(N), `whole logits: ${whole.head} bytes`);
        assert.equal(chunked.head, 3 * bytes(CHUNK), `chunked: ${chunked.head} bytes, ${CHUNK}-row chunks`);
        // The backend's peak: the whole run holds those three (N, V) tensors at once (and positionStats'
        // temporaries of the same size); the chunked one, a few (CHUNK, V) ones.
        const mib = (n: number): string => `${(n / 2 ** 20).toFixed(2)} MiB`;
        assert.ok(
          whole.peak - chunked.peak >= 3 * bytes(N - CHUNK),
          `peak live bytes: whole logits ${mib(whole.peak)}, chunked ` +
            `${mib(chunked.peak)}; expected at least ${mib(3 * bytes(N - CHUNK))} less`,
        );
        // Same numbers: every logged metric of every step, and the per-token log-probs of each training forward.
        const [w, c] = [whole.value, chunked.value];
        assert.equal(c.metrics.length, w.metrics.length, 'metrics lines');
        w.metrics.forEach((line, s) => {
          for (const [k, v] of Object.entries(line))
            if (!TIMING.test(k)) close(v, c.metrics[s][k], `step ${s + 1} ${k}`);
        });
        assert.equal(c.logps.length, w.logps.length, 'rows of training forwards');
        w.logps.forEach((row, r) => closeArrays(row, c.logps[r], `logps of row ${r}`));
      },
    );
  }
});

describe('PPO: the chunked head holds one chunk of logits and keeps the numbers', () => {
  const B = 8,
    Q = 4,
    T = 12,
    PAD = 0;
  const queryResponses = Int32Array.from({ length: B * (Q + T) }, (_, i) => {
    const b = Math.floor(i / (Q + T)),
      s = i % (Q + T);
    if (s < Q) return s < b % 3 ? PAD : 1 + ((b * 97 + s * 31) % (V - 2));
    if (b % 3 === 0 && s === Q + 5 + b) return EOS; // some responses stop, the others run to T
    return 1 + ((b * 389 + s * 577) % (V - 2));
  });

  /** One update (rollout phase + 2 PPO epochs of 2 micro-batches) from fresh models. */
  async function update(headChunkRows?: number) {
    const policy = loadModel(model),
      value = valueFromPolicy(model);
    const ref = loadModel(await tinyModel(join(root, 'ppo-ref'), 2));
    const params = [...policyParams(trainAll(policy)), ...valueParams(value)];
    const optimizer = new Optimizer(params, {
      name: 'adamw',
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      decayed: decays,
      momentum: 0,
      alpha: 0.99,
    });
    const tok = loadTokenizer(model);
    const o: PpoUpdateOptions = {
      temperature: 0.7,
      padId: PAD,
      eosId: EOS,
      stopId: EOS,
      missingEosPenalty: 1,
      klCoef: 0.05,
      klEstimator: 'k1',
      gamma: 1,
      lam: 0.95,
      whitenRewards: false,
      cliprange: 0.2,
      cliprangeValue: 0.2,
      vfCoef: 0.1,
      numPpoEpochs: 2,
      numMiniBatches: 1,
      microBatch: 4,
      gradientAccumulationSteps: 2,
      forwardBatch: 3,
      headChunkRows,
    };
    const batch = { B, Q, T, queryResponses };
    const reward = { kind: 'fn' as const, fn: (_p: string, c: string) => c.length / 10, tok };
    const m = await measured(async () => {
      const models = { policy, ref, value, reward };
      const d = await rolloutPhase(models, batch, o);
      const r = await ppoEpochs(
        models,
        optimizer,
        batch,
        d,
        o,
        { step: 0 },
        {
          lr: 1e-3,
          endOfDataloader: false,
          permutation: (_n, e) => (e === 0 ? [3, 1, 6, 0, 7, 2, 5, 4] : [5, 0, 2, 7, 1, 4, 6, 3]),
        },
      );
      return { d, r, metrics: updateMetrics(d, r.stats, B, T, EOS, 1e-3) };
    });
    const weights = await Promise.all(params.map(async (p) => Float32Array.from(await p.tensor.toArray())));
    optimizer.dispose();
    for (const t of [...policy.params.values(), ...ref.params.values(), ...value.model.params.values(), value.head])
      t.dispose();
    return { ...m, weights, names: params.map((p) => p.name) };
  }

  test(
    `chunks of ${CHUNK} rows vs the whole logits ` + `(temperature 0.7): rollout data, stats, metrics, weights`,
    async () => {
      const whole = await update();
      const chunked = await update(CHUNK);
      // The largest head call: a micro-batch of 4 rows x T with gradient (logits, scaled copy, gradient).
      const N = 4 * T;
      assert.equal(whole.head, 3 * bytes(N), `whole logits: ${whole.head} bytes`);
      assert.equal(chunked.head, 3 * bytes(CHUNK), `chunked: ${chunked.head} bytes, ${CHUNK}-row chunks`);
      const mib = (n: number): string => `${(n / 2 ** 20).toFixed(2)} MiB`;
      assert.ok(
        whole.peak - chunked.peak >= 3 * bytes(N - CHUNK),
        `peak live bytes: whole logits ${mib(whole.peak)}, chunked ` +
          `${mib(chunked.peak)}; expected at least ${mib(3 * bytes(N - CHUNK))} less`,
      );
      const a = whole.value,
        b = chunked.value;
      for (const k of ['logprobs', 'refLogprobs', 'values', 'scores', 'rewards', 'advantages', 'returns'] as const)
        closeArrays(a.d[k], b.d[k], k);
      for (const [k, v] of Object.entries(a.r.stats))
        closeArrays(v, b.r.stats[k as keyof typeof a.r.stats], `stats.${k}`);
      for (const [k, v] of Object.entries(a.metrics)) close(v, b.metrics[k], `metrics.${k}`);
      whole.weights.forEach((w, i) => closeArrays(w, chunked.weights[i], whole.names[i]));
    },
  );
});
