// The demo's new comparison pieces, small: the reward model's pairs (all 6 of 4 samples, ties
// skipped, the higher ground truth chosen), its accuracy count, the win rate against the chosen
// completions, and the Unlikelihood loss against log-probs computed by another path (eval/kl.ts).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { allPairs } from '../../src/demo/rlhf.js';
import { encodeDemoPrompt } from '../../src/demo/sample.js';
import { UnlikelihoodObjective } from '../../src/demo/unlikelihood.js';
import { chosenRewards, winVsChosen } from '../../src/demo/winrates.js';
import { defaultDemoModel } from '../../src/demo/options.js';
import { initEngine } from '../../src/engine.js';
import { completionLogps } from '../../src/eval/kl.js';
import { loadModel, trainAll } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';

before(async () => {
  await initEngine({ device: 'cpu', threads: 1 });
});

const s = (reward: number, ids: number[] = [reward * 100]) => ({ text: '', ids, reward });

test("allPairs: every pair of a prompt's samples with different rewards, the higher chosen, prompt ids first", () => {
  const prompts = [
    { text: 'a', ids: [7] },
    { text: 'b', ids: [8, 9] },
  ];
  const ex = allPairs(prompts, [
    [s(0.1), s(0.4), s(0.3), s(0.2)],
    [s(0.5), s(0.5), s(0.9), s(0.5)],
  ]);
  // 4 distinct rewards: C(4,2) = 6 pairs; 3 tied at 0.5 and one 0.9: 3 pairs (0.5 vs 0.5 skipped).
  assert.equal(ex.length, 6 + 3);
  for (const e of ex.slice(0, 6)) {
    assert.equal(e.chosenIds[0], 7);
    assert.ok(e.chosenIds[1] > e.rejectedIds[1]);
  }
  for (const e of ex.slice(6)) assert.deepEqual(e.chosenIds, [8, 9, 90]);
  assert.throws(() => allPairs(prompts, [[s(0.1), s(0.2)]]), /2 prompts but 1 groups/);
});

test("chosenRewards / winVsChosen: best of each prompt's samples, all-tied prompts left out, ties count 1/2", () => {
  const chosen = chosenRewards([
    [s(0.2), s(0.7)],
    [s(0.5), s(0.5)],
    [s(0.4), s(0.9)],
  ]);
  assert.deepEqual(chosen, [0.7, null, 0.9]);
  // Prompt 0: 0.8 wins, 0.7 ties -> 0.75; prompt 2: 0.1 and 0.2 lose -> 0; prompt 1 is not counted.
  const w = winVsChosen(
    [
      [s(0.8), s(0.7)],
      [s(1), s(1)],
      [s(0.1), s(0.2)],
    ],
    chosen,
  );
  assert.equal(w.mean, 0.375);
  assert.throws(() => winVsChosen([[s(1)]], [null]), /no held-out prompt has a chosen completion/);
});

test(
  'Unlikelihood loss = -(token-mean log p(chosen)) + alpha ' +
    '* token-mean log p(rejected), log-probs from eval/kl.ts',
  async () => {
    const dir = defaultDemoModel();
    const tok = loadTokenizer(dir);
    const policy = loadModel(dir);
    const params = trainAll(policy);
    const pad = tok.padId ?? tok.eosId ?? 0;
    const p = (t: string) => encodeDemoPrompt(tok, t);
    const c = (t: string) => ({ ids: tok.encode(t, { addSpecialTokens: false }), text: t, reward: 0 });
    const pairs = [
      ['The film was', ' great fun.', ' a mess and dull'],
      ['I', ' loved every minute', ' hated it'],
    ].map(([pr, w, l]) => {
      const prompt = p(pr),
        chosen = c(w),
        rejected = c(l);
      return { prompt: pr, chosen, rejected, promptIds: prompt.ids, chosenIds: chosen.ids, rejectedIds: rejected.ids };
    });
    const alpha = 0.3;
    const obj = new UnlikelihoodObjective({
      policy,
      params,
      pairs,
      padId: pad,
      alpha,
      saveWeights: async () => {},
      loadWeights: async () => {},
    });
    const r = await obj.micro([0, 1], 1);
    const lp = await completionLogps(
      policy,
      pairs.flatMap((x) => [
        { promptIds: x.promptIds, completionIds: x.chosenIds },
        { promptIds: x.promptIds, completionIds: x.rejectedIds },
      ]),
      pad,
    );
    const lenC = pairs.reduce((a, x) => a + x.chosenIds.length, 0),
      lenR = pairs.reduce((a, x) => a + x.rejectedIds.length, 0);
    const want = -(lp[0] + lp[2]) / lenC + (alpha * (lp[1] + lp[3])) / lenR;
    assert.ok(Math.abs(r.loss - want) < 1e-4, `loss ${r.loss}, expected ${want}`);
    assert.ok(Math.abs(r.metrics['logps/chosen_per_token'] - (lp[0] + lp[2]) / lenC) < 1e-4);
    // The gradient reached the parameters.
    let g = 0;
    for (const q of params)
      if (q.tensor.grad) g += Array.from(await q.tensor.grad.toArray(), Math.abs).reduce((a, x) => a + x, 0);
    assert.ok(g > 0, 'gradients are non-zero');
    assert.throws(
      () =>
        new UnlikelihoodObjective({
          policy,
          params,
          pairs,
          padId: pad,
          alpha: -1,
          saveWeights: async () => {},
          loadWeights: async () => {},
        }),
      /alpha is -1/,
    );
    for (const t of policy.params.values()) t.dispose();
  },
);
