// The ground-truth reward: AFINN lexicon values, the sigmoid form, obvious orderings, and agreement
// with the human sentiment labels of the review sentences (an independent reference).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reviewSentences } from '../../src/demo/corpus.js';
import { AFINN_TEMPERATURE, reward, sentimentScore } from '../../src/eval/reward.js';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

test('sentimentScore: AFINN-165 valences (good +3, bad -3, outstanding +5, negation flips)', () => {
  assert.equal(sentimentScore('good'), 3);
  assert.equal(sentimentScore('bad'), -3);
  assert.equal(sentimentScore('outstanding'), 5);
  assert.equal(sentimentScore('It was good and bad.'), 0);
  assert.equal(sentimentScore('not good'), -3);
  assert.equal(sentimentScore(''), 0);
  assert.throws(() => sentimentScore(42 as unknown as string), /sentimentScore/);
});

test('reward: sigmoid(score / T), in (0, 1), 0.5 for text without sentiment words', () => {
  assert.equal(reward('The movie is two hours long.'), 0.5);
  assert.equal(reward('good'), sigmoid(3 / AFINN_TEMPERATURE));
  assert.equal(reward('bad'), sigmoid(-3 / AFINN_TEMPERATURE));
  assert.equal(reward('I loved it.'), reward('I loved it.'));
  for (const t of ['great '.repeat(200), 'awful '.repeat(200)]) {
    const r = reward(t);
    assert.ok(r >= 0 && r <= 1, `${r}`);
  }
});

test('reward: obviously positive > neutral > negative', () => {
  const pos = ['This movie was wonderful, I loved every minute of it.', 'Excellent acting and a beautiful story.'];
  const neu = ['The film was released in 1998.', 'He walked to the station and bought a ticket.'];
  const neg = ['A terrible, boring waste of time.', 'The worst film I have ever seen, awful acting.'];
  for (const p of pos) for (const n of neu) assert.ok(reward(p) > reward(n), `${p} vs ${n}`);
  for (const n of neu) for (const q of neg) assert.ok(reward(n) > reward(q), `${n} vs ${q}`);
});

test('reward: agrees with the human labels of the IMDb, Amazon and Yelp sentences (AUC > 0.75)', () => {
  for (const set of ['imdb', 'amazon', 'yelp'] as const) {
    const s = reviewSentences(set);
    const pos = s.filter((x) => x.label === 1).map((x) => reward(x.text));
    const neg = s.filter((x) => x.label === 0).map((x) => reward(x.text));
    let wins = 0;
    for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
    const auc = wins / (pos.length * neg.length);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(auc > 0.75, `${set}: AUC ${auc}`);
    assert.ok(
      mean(pos) > 0.65 && mean(neg) < 0.5,
      `${set}: mean reward ${mean(pos)} (positive) vs ${mean(neg)} (negative)`,
    );
  }
});
