// The demo's pieces against independent references: pair building (ties skipped), best-of-N (brute
// force over every N-tuple), the upper frontier, the KL estimator (exactly 0 for two copies of one
// model; log-probs equal to those generate() reports; the Monte-Carlo mean near the exact KL of a
// one-token completion, summed over the whole vocabulary).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { join } from 'node:path';
import { logSoftmax, noGrad, tensor } from '../../src/core/index.js';
import { Rng } from '../../src/core/random.js';
import { initEngine } from '../../src/engine.js';
import { bestOfN, bestOfNKlBound, bestOfNOnePrompt, pickBest } from '../../src/eval/best-of-n.js';
import { generate, pickToken } from '../../src/eval/generate.js';
import { completionLogps, estimateKl, klFromLogps } from '../../src/eval/kl.js';
import { winRate, winRateOnePrompt } from '../../src/eval/win-rate.js';
import { checkAgainst, frontierReward, upperFrontier } from '../../src/demo/frontier.js';
import { buildPairs } from '../../src/demo/pairs.js';
import type { Scored } from '../../src/demo/sample.js';
import { initModel } from '../../src/models/init.js';
import { loadModel, saveModel } from '../../src/models/load.js';
import { forward, type CausalLM } from '../../src/models/model.js';
import { tempRoot } from '../train/tiny.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

const sc = (text: string, reward: number, ids = [1, 2]): Scored => ({ text, reward, ids });

test('buildPairs: best vs worst per prompt, first of equals, all-tied prompts skipped', () => {
  const prompts = [
    { text: 'a', ids: [9, 1] },
    { text: 'b', ids: [9, 2] },
    { text: 'c', ids: [9, 3] },
  ];
  const groups = [
    [sc('x', 0.5), sc('good', 0.82, [5]), sc('bad', 0.18, [6]), sc('great', 0.82, [7])],
    [sc('p', 0.5), sc('q', 0.5), sc('r', 0.5)], // all tied: no pair
    [sc('ok', 0.62, [3]), sc('meh', 0.5, [4])],
  ];
  const { pairs, skippedTies } = buildPairs(prompts, groups);
  assert.equal(skippedTies, 1);
  assert.equal(pairs.length, 2);
  assert.deepEqual([pairs[0].chosen.text, pairs[0].rejected.text], ['good', 'bad']);
  assert.deepEqual([pairs[0].promptIds, pairs[0].chosenIds, pairs[0].rejectedIds], [[9, 1], [5], [6]]);
  assert.deepEqual([pairs[1].prompt, pairs[1].chosen.text, pairs[1].rejected.text], ['c', 'ok', 'meh']);
  assert.throws(() => buildPairs(prompts.slice(0, 1), [[sc('x', 1)]]), /at least 2/);
  assert.throws(() => buildPairs(prompts, groups.slice(0, 2)), /3 prompts but 2 groups/);
});

test('best-of-N: pickBest takes the maximum (first on ties)', () => {
  assert.equal(pickBest([0.5, 0.9, 0.1, 0.9]), 1);
  assert.equal(pickBest([0.3]), 0);
  assert.equal(pickBest([-1, -0.5, -2]), 1);
  assert.throws(() => pickBest([]), /no candidates/);
});

// Brute force: every ordered N-tuple of the M samples (drawn with replacement), the best chosen
// uniformly among tied maxima; the distribution of the chosen sample against the uniform one, and
// the chosen sample against every one of the M samples (the win rate, ties 1/2).
function bruteForce(rewards: number[], n: number): { reward: number; kl: number; winRate: number } {
  const M = rewards.length;
  const prob = new Float64Array(M);
  const idx = new Array<number>(n).fill(0);
  const total = M ** n;
  for (let t = 0; t < total; t++) {
    let x = t;
    for (let j = 0; j < n; j++) {
      idx[j] = x % M;
      x = Math.floor(x / M);
    }
    const best = Math.max(...idx.map((i) => rewards[i]));
    const winners = idx.filter((i) => rewards[i] === best);
    for (const w of winners) prob[w] += 1 / winners.length / total;
  }
  let reward = 0,
    kl = 0,
    winRate = 0;
  prob.forEach((p, i) => {
    reward += p * rewards[i];
  });
  prob.forEach((p, i) => {
    for (const r of rewards) winRate += (p / M) * (rewards[i] > r ? 1 : rewards[i] === r ? 0.5 : 0);
  });
  // Given its reward, the chosen sample is uniform among the samples with that reward (as under
  // pi_ref), so the KL of the chosen sample's distribution is the KL of its reward distribution.
  const byValue = new Map<number, { p: number; q: number }>();
  prob.forEach((p, i) => {
    const e = byValue.get(rewards[i]) ?? { p: 0, q: 0 };
    e.p += 1 / M;
    e.q += p;
    byValue.set(rewards[i], e);
  });
  for (const { p, q } of byValue.values()) if (q > 0) kl += q * Math.log(q / p);
  return { reward, kl, winRate };
}

test('best-of-N: expected reward, KL and win rate equal brute force over every N-tuple; KL <= log N - (N-1)/N', () => {
  const cases: [number[], number][] = [
    [[0.1, 0.5, 0.9], 2],
    [[0.1, 0.5, 0.9, 0.7], 3],
    [[0.5, 0.5, 0.5, 0.82, 0.18], 2],
    [[0.5, 0.5, 0.82, 0.82, 0.18, 0.5], 4],
  ];
  for (const [rewards, n] of cases) {
    const got = bestOfNOnePrompt(rewards, n),
      want = bruteForce(rewards, n);
    assert.ok(
      Math.abs(got.reward - want.reward) < 1e-12,
      `reward ${got.reward} vs ${want.reward} for ${rewards} N=${n}`,
    );
    assert.ok(Math.abs(got.kl - want.kl) < 1e-12, `KL ${got.kl} vs ${want.kl} for ${rewards} N=${n}`);
    assert.ok(
      Math.abs(got.winRate - want.winRate) < 1e-12,
      `win rate ${got.winRate} vs ${want.winRate} for ${rewards} N=${n}`,
    );
    assert.ok(got.kl <= bestOfNKlBound(n) + 1e-12);
  }
  // All tied: best-of-N is the reference itself.
  assert.deepEqual(bestOfNOnePrompt([0.5, 0.5, 0.5], 4), { reward: 0.5, kl: 0, winRate: 0.5 });
  // Best-of-1 is the reference: it wins half the time against its own samples.
  assert.ok(Math.abs(bestOfNOnePrompt([0.1, 0.5, 0.5, 0.9], 1).winRate - 0.5) < 1e-12);
  // Many distinct rewards: the KL approaches the bound log N - (N-1)/N.
  const distinct = Array.from({ length: 4000 }, (_, i) => i / 4000);
  assert.ok(Math.abs(bestOfNOnePrompt(distinct, 4).kl - bestOfNKlBound(4)) < 2e-3);
  assert.ok(Math.abs(bestOfNOnePrompt(distinct, 4).reward - 0.8) < 1e-3); // E[max of 4 uniforms] = 4/5
  assert.ok(Math.abs(bestOfNOnePrompt(distinct, 4).winRate - 0.8) < 1e-3); // P(max of 4 > a 5th draw) = 4/5
  const two = bestOfN(
    [
      [0, 1],
      [0.5, 0.5],
    ],
    2,
  );
  assert.ok(Math.abs(two.reward - (0.75 + 0.5) / 2) < 1e-12);
  // [0, 1], N = 2: picks 1 with probability 3/4; against one draw: 3/8 wins + 1/2 ties = 5/8. [0.5, 0.5]: 1/2.
  assert.ok(Math.abs(two.winRate.mean - (5 / 8 + 1 / 2) / 2) < 1e-12 && two.winRate.n === 2);
  assert.throws(() => bestOfNOnePrompt([0.1], 0), /integer >= 1/);
});

test('win rate: every policy sample against every baseline sample, ties 1/2; mean and error over prompts', () => {
  // 0.9 beats 0.2 and 0.5; 0.5 ties 0.5 and beats 0.2: (2 + 1.5) / 4.
  assert.equal(winRateOnePrompt([0.9, 0.5], [0.2, 0.5]), 3.5 / 4);
  assert.equal(winRateOnePrompt([0.1], [0.2, 0.3]), 0);
  // Against its own samples a policy scores 1/2, whatever the ties.
  assert.equal(winRateOnePrompt([0.3, 0.3, 0.7, 0.1], [0.3, 0.3, 0.7, 0.1]), 0.5);
  const w = winRate(
    [[0.9, 0.5], [0.1]],
    [
      [0.2, 0.5],
      [0.2, 0.3],
    ],
  );
  assert.equal(w.n, 2);
  assert.equal(w.mean, (3.5 / 4 + 0) / 2);
  assert.ok(Math.abs(w.se - Math.abs(3.5 / 4 - 0) / 2) < 1e-12); // two prompts: sd / sqrt(2) = |a - b| / 2
  assert.throws(() => winRate([[1]], []), /1 prompts for the policy, 0 for the baseline/);
  assert.throws(() => winRateOnePrompt([], [1]), /no samples/);
});

test('upperFrontier: concave hull of the non-dominated points; frontierReward interpolates', () => {
  const pts = [
    { kl: 0, reward: 0.5 },
    { kl: 1, reward: 0.6 },
    { kl: 2, reward: 0.8 },
    { kl: 3, reward: 0.7 },
    { kl: 4, reward: 0.9 },
    { kl: 0.5, reward: 0.4 },
  ];
  // (1, 0.6) lies under the segment (0, 0.5)-(2, 0.8); (3, 0.7) and (0.5, 0.4) are dominated.
  assert.deepEqual(upperFrontier(pts), [
    { kl: 0, reward: 0.5 },
    { kl: 2, reward: 0.8 },
    { kl: 4, reward: 0.9 },
  ]);
  const hull = upperFrontier(pts);
  assert.ok(Math.abs(frontierReward(hull, 1) - 0.65) < 1e-12);
  assert.equal(frontierReward(hull, 10), 0.9);
  assert.equal(frontierReward(hull, -0.1), 0.5);
  // A run's points against it: on or above within one standard error of the point's reward.
  const run = [
    { kl: 1, reward: 0.64, rewardSe: 0.02 },
    { kl: 3, reward: 0.8, rewardSe: 0.01 },
    { kl: 5, reward: 0.95, rewardSe: 0.01 },
  ];
  const c = checkAgainst(pts, [run, [{ kl: 0.5, reward: 0.3, rewardSe: 0.01 }]]);
  // hull at 1: 0.65 (0.64 + 0.02 counts as on it); at 3: 0.85 (0.8 is below); at 5: 0.9 (above); at 0.5: 0.575 (below).
  assert.deepEqual([c.points, c.onOrAbove, c.finals, c.finalsOnOrAbove], [4, 2, 2, 1]);
});

async function tinyGpt2(root: string, seed: number): Promise<string> {
  const dir = join(root, `m${seed}`);
  await saveModel(
    initModel(
      {
        model_type: 'gpt2',
        vocab_size: 40,
        n_positions: 32,
        n_embd: 16,
        n_layer: 2,
        n_head: 2,
        activation_function: 'gelu_new',
        layer_norm_epsilon: 1e-5,
        tie_word_embeddings: true,
        initializer_range: 0.5,
      },
      seed,
    ),
    dir,
  );
  return dir;
}

/** log softmax of the next-token logits after `prompt` (float64 on the host). */
async function nextTokenLogps(m: CausalLM, prompt: number[]): Promise<Float64Array> {
  const logits = await noGrad(() =>
    logSoftmax(forward(m, tensor(Int32Array.from(prompt), [1, prompt.length], 'i32'))).toArray(),
  );
  const V = m.vocabSize;
  return Float64Array.from(logits.subarray((prompt.length - 1) * V, prompt.length * V));
}

test(
  'KL estimator: exactly 0 for two copies of one model; log-probs ' +
    'match generate(); the Monte-Carlo mean near the exact KL',
  async () => {
    const root = tempRoot();
    const dirA = await tinyGpt2(root, 1),
      dirB = await tinyGpt2(root, 2);
    const a = loadModel(dirA),
      a2 = loadModel(dirA),
      b = loadModel(dirB);
    const prompts = [[3, 4, 5], [7], [1, 2, 3, 4, 5, 6], [9, 9]];
    const g = await generate(a, prompts, { maxNewTokens: 6, doSample: true, rng: new Rng(3), eosIds: [0], padId: 0 });
    const samples = prompts.map((p, i) => ({ promptIds: p, completionIds: g.tokens[i] }));
    const same = await estimateKl(a, a2, samples, 0);
    assert.equal(same.mean, 0);
    same.policyLogps.forEach((x, i) => assert.equal(x - same.refLogps[i], 0));
    // sequenceLogps over the whole sequence vs the KV-cached, left-padded decoding of generate().
    const lp = await completionLogps(a, samples, 0);
    g.logps.forEach((row, i) =>
      assert.ok(Math.abs(row.reduce((s, x) => s + x, 0) - lp[i]) < 1e-3, `row ${i}: ${lp[i]} vs generate ${row}`),
    );

    // One-token completions: the exact KL is a sum over the vocabulary.
    const prompt = [3, 4, 5];
    const pa = await nextTokenLogps(a, prompt),
      pb = await nextTokenLogps(b, prompt);
    let exact = 0;
    pa.forEach((l, v) => {
      exact += Math.exp(l) * (l - pb[v]);
    });
    const n = 3000;
    const one = await generate(
      a,
      Array.from({ length: n }, () => prompt),
      { maxNewTokens: 1, doSample: true, rng: new Rng(7) },
    );
    const mc = await estimateKl(
      a,
      b,
      one.tokens.map((t) => ({ promptIds: prompt, completionIds: t })),
      0,
      512,
    );
    assert.ok(exact > 0.05, `the two random models should differ (KL ${exact})`);
    assert.ok(Math.abs(mc.mean - exact) < 4 * mc.se, `MC ${mc.mean} ± ${mc.se} vs exact ${exact}`);
    assert.deepEqual(klFromLogps([1, 2], [0.5, 1]).mean, 0.75);
    assert.throws(() => klFromLogps([1], [1, 2]), /1 policy log-probs vs 2/);
  },
);

test('plain sampling (no top-k / top-p) draws tokens with softmax probabilities; logp is log softmax', () => {
  const row = Float32Array.from([2, 0.5, -1, 1.5, 0, -30, 1]);
  const lse = Math.log(row.reduce((a, x) => a + Math.exp(x), 0));
  const rng = new Rng(11);
  const n = 40000,
    counts = new Array<number>(row.length).fill(0);
  for (let i = 0; i < n; i++) {
    const { id, logp } = pickToken(row, { maxNewTokens: 1, doSample: true }, rng);
    counts[id]++;
    assert.ok(Math.abs(logp - (row[id] - lse)) < 1e-9);
  }
  row.forEach((x, v) => {
    const p = Math.exp(x - lse),
      sd = Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(counts[v] / n - p) < 5 * sd + 1e-9, `token ${v}: ${counts[v] / n} vs ${p}`);
  });
  // Temperature 2 flattens the distribution: token 0 (logit 2) drops from 0.38 to about 0.26.
  const hot = new Array<number>(row.length).fill(0);
  for (let i = 0; i < n; i++) hot[pickToken(row, { maxNewTokens: 1, doSample: true, temperature: 2 }, rng).id]++;
  const z = row.reduce((a, x) => a + Math.exp(x / 2), 0);
  assert.ok(Math.abs(hot[0] / n - Math.exp(1) / z) < 0.01, `${hot[0] / n} vs ${Math.exp(1) / z}`);
});
