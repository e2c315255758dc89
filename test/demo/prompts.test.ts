// Review prompts: prefixes of review sentences, train / held-out disjoint, and the held-out side
// drawn from sentences the pre-training corpus holds out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCorpus } from '../../src/demo/corpus.js';
import { imdbPrompts } from '../../src/demo/prompts.js';

const train = imdbPrompts({ split: 'train' });
const held = imdbPrompts({ split: 'heldout' });

test('prompts: 2-5 word prefixes of their sentences, at least one word left to complete', () => {
  for (const p of [...train, ...held]) {
    const n = p.prompt.split(' ').length;
    assert.ok(n >= 2 && n <= 5, `${n} words: ${p.prompt}`);
    assert.ok(p.sentence.startsWith(`${p.prompt} `), `${p.prompt} | ${p.sentence}`);
    assert.equal(p.source, 'reviews/imdb');
    assert.ok(p.label === 0 || p.label === 1);
  }
  assert.ok(train.length > 700 && held.length > 60, `${train.length} train, ${held.length} held-out`);
  const lengths = new Set(train.map((p) => p.prompt.split(' ').length));
  assert.deepEqual([...lengths].sort(), [2, 3, 4, 5]);
});

test('prompts: train and held-out are disjoint, as prompts and as sentences', () => {
  const heldPrompts = new Set(held.map((p) => p.prompt));
  const heldSentences = new Set(held.map((p) => p.sentence));
  for (const p of train) {
    assert.ok(!heldPrompts.has(p.prompt), p.prompt);
    assert.ok(!heldSentences.has(p.sentence), p.sentence);
  }
  assert.equal(new Set(train.map((p) => p.prompt)).size, train.length);
});

test('prompts: held-out sentences are held out of the corpus too; same prompts on every call', () => {
  const corpus = buildCorpus({ books: [], sotuFromYear: null, reviewRepeat: 1 });
  const corpusTrain = new Set(corpus.train.map((d) => d.text));
  const corpusHeld = new Set(corpus.heldOut.map((d) => d.text));
  for (const p of held) assert.ok(corpusHeld.has(p.sentence) && !corpusTrain.has(p.sentence), p.sentence);
  for (const p of train) assert.ok(corpusTrain.has(p.sentence), p.sentence);
  assert.deepEqual(imdbPrompts({ split: 'heldout' }), held);
});

test('prompts: options', () => {
  const all = imdbPrompts({ sets: ['imdb', 'amazon', 'yelp'], minWords: 3, maxWords: 3 });
  assert.ok(all.every((p) => p.prompt.split(' ').length === 3));
  assert.deepEqual(new Set(all.map((p) => p.source)), new Set(['reviews/imdb', 'reviews/amazon', 'reviews/yelp']));
  assert.throws(() => imdbPrompts({ minWords: 4, maxWords: 2 }), /minWords/);
  assert.throws(() => imdbPrompts({ split: 'test' as never }), /split/);
});
