// Text clean-up helpers of the demo corpus, against hand-worked examples and published test vectors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkSentences, fnv1a, isHeldOut, normalizeText, shuffled, splitSentences } from '../../src/demo/text.js';

test('normalizeText: whitespace, Windows-1252 leftovers, typography, Gutenberg marks', () => {
  assert.equal(normalizeText('  A very,\n very  slow\tmovie.  '), 'A very, very slow movie.');
  assert.equal(normalizeText('The script is\x85was there a script?'), 'The script is...was there a script?');
  assert.equal(normalizeText('perfect \x96 a true masterpiece'), 'perfect - a true masterpiece');
  assert.equal(normalizeText('\u201cIt\u2019s\u201d \u2014 fine\u2026'), '"It\'s" - fine...');
  assert.equal(normalizeText('The pale Usher--threadbare'), 'The pale Usher - threadbare');
  assert.equal(normalizeText('a _little_ tap, _tap_'), 'a little tap, tap');
  assert.equal(normalizeText('cafe\u0301'), 'caf\u00e9'); // NFC
  assert.ok(!/\n/.test(normalizeText('line\r\nline\nline')));
});

test('splitSentences: ends of sentences, abbreviations and initials kept inside', () => {
  assert.deepEqual(splitSentences('Mr. Smith went home. He slept! Did he? "Yes," she said. Then 3 more.'), [
    'Mr. Smith went home.',
    'He slept!',
    'Did he?',
    '"Yes," she said.',
    'Then 3 more.',
  ]);
  assert.deepEqual(splitSentences('G. K. Chesterton wrote it. It is good.'), [
    'G. K. Chesterton wrote it.',
    'It is good.',
  ]);
  assert.deepEqual(splitSentences('no capital. after this'), ['no capital. after this']);
  assert.deepEqual(splitSentences('He said "stop." Then left.'), ['He said "stop."', 'Then left.']);
});

test('chunkSentences: greedy packing up to maxChars, long sentences alone', () => {
  assert.deepEqual(chunkSentences(['aaaa.', 'bbbb.', 'cccc.'], 11), ['aaaa. bbbb.', 'cccc.']);
  assert.deepEqual(chunkSentences(['a very long sentence here.', 'x.'], 10), ['a very long sentence here.', 'x.']);
  assert.deepEqual(chunkSentences([], 10), []);
});

test('fnv1a: published 32-bit FNV-1a test vectors', () => {
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
  assert.equal(fnv1a('foobar'), 0xbf9cf968);
});

test('isHeldOut: about the requested share, 0 holds out nothing', () => {
  const texts = Array.from({ length: 20000 }, (_, i) => `document number ${i}`);
  const share = texts.filter((t) => isHeldOut(t, 0.1)).length / texts.length;
  assert.ok(Math.abs(share - 0.1) < 0.01, `held-out share ${share}`);
  assert.equal(texts.filter((t) => isHeldOut(t, 0)).length, 0);
});

test('shuffled: a seeded permutation, same for the same seed', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i);
  const a = shuffled(xs, 7),
    b = shuffled(xs, 7),
    c = shuffled(xs, 8);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.notDeepEqual(a, xs);
  assert.deepEqual(
    [...a].sort((p, q) => p - q),
    xs,
  );
});
