// Byte-level BPE: GPT-2's byte table, a hand-worked training example, round trips on arbitrary
// Unicode, and the same ids as Hugging Face's tokenizers (the npm package @huggingface/tokenizers;
// and the Rust library through transformers, when test/fixtures/demo/hf_ids.json is present).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { buildCorpus } from '../../src/demo/corpus.js';
import { mulberry32 } from '../../src/core/random.js';
import { ByteLevelBpe } from '../../src/tokenizer/bpe.js';
import { EOS_TOKEN, trainBpe, trainBpeFromCounts } from '../../src/tokenizer/bpe-train.js';
import { BYTE_TO_CHAR, CHAR_TO_BYTE } from '../../src/tokenizer/byte-level.js';
import { fromTokenizerJson, toTokenizerConfig, toTokenizerJson } from '../../src/tokenizer/hf-json.js';

const fixtures = new URL('../../../test/fixtures/demo/', import.meta.url);
const readJson = (name: string) => JSON.parse(readFileSync(new URL(name, fixtures), 'utf8'));
const fixtureTexts: string[] = readJson('texts.json');

// Random strings over many scripts, whitespace kinds, controls, combining marks and emoji (no lone surrogates).
function randomTexts(n: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x20, 0x7e],
    [0x20, 0x7e],
    [0x00, 0x1f],
    [0x80, 0xff],
    [0x100, 0x24f],
    [0x300, 0x36f],
    [0x370, 0x3ff],
    [0x400, 0x4ff],
    [0x590, 0x6ff],
    [0x2000, 0x206f],
    [0x3000, 0x30ff],
    [0x4e00, 0x4fff],
    [0xac00, 0xad00],
    [0xfe00, 0xfeff],
    [0x1f300, 0x1faff],
    [0x10000, 0x1007f],
  ];
  const words = [' ', '  ', '\n', '\t', "'s", "'ll", ' the', ' movie', '<|endoftext|>', '123', ' great'];
  return Array.from({ length: n }, () => {
    let s = '';
    const len = 1 + Math.floor(rand() * 30);
    for (let i = 0; i < len; i++) {
      if (rand() < 0.2) {
        s += words[Math.floor(rand() * words.length)];
        continue;
      }
      const [lo, hi] = ranges[Math.floor(rand() * ranges.length)]!;
      s += String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1)));
    }
    return s;
  });
}

test('byte table: GPT-2 bytes_to_unicode (space -> Ġ, newline -> Ċ, 0 -> Ā, 0xad -> Ń)', () => {
  assert.equal(BYTE_TO_CHAR[0x20], 'Ġ');
  assert.equal(BYTE_TO_CHAR[0x0a], 'Ċ');
  assert.equal(BYTE_TO_CHAR[0x00], 'Ā');
  assert.equal(BYTE_TO_CHAR[0x7f], 'ġ');
  assert.equal(BYTE_TO_CHAR[0xad], 'Ń');
  assert.equal(BYTE_TO_CHAR[0x41], 'A');
  assert.equal(BYTE_TO_CHAR[0xe9], 'é');
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  BYTE_TO_CHAR.forEach((c, b) => assert.equal(CHAR_TO_BYTE.get(c), b));
});

test('trainBpe: hand-worked merges (hug 10, pug 5, pun 12, bun 4, hugs 5)', () => {
  // Pair counts: u g 20 -> "ug"; u n 16 -> "un"; h ug 15 -> "hug"; p un 12 -> "pun"; then p ug and
  // hug s tie at 5: the smaller ids win (p = 112 < hug = 258) -> "pug", then "hugs"; b un 4 -> "bun".
  const counts = new Map([
    ['hug', 10],
    ['pug', 5],
    ['pun', 12],
    ['bun', 4],
    ['hugs', 5],
  ]);
  const m = trainBpeFromCounts(counts, { vocabSize: 256 + 7 + 1, minFrequency: 1 });
  assert.deepEqual(m.merges, [
    ['u', 'g'],
    ['u', 'n'],
    ['h', 'ug'],
    ['p', 'un'],
    ['p', 'ug'],
    ['hug', 's'],
    ['b', 'un'],
  ]);
  assert.deepEqual(m.vocab.slice(256), ['ug', 'un', 'hug', 'pun', 'pug', 'hugs', 'bun', EOS_TOKEN]);
  assert.deepEqual(m.specialTokens, [{ id: 263, content: EOS_TOKEN }]);
  // minFrequency 5 stops before "bun" (count 4): the vocabulary ends short of the target.
  const m5 = trainBpeFromCounts(counts, { vocabSize: 300, minFrequency: 5 });
  assert.equal(m5.merges.length, 6);
  assert.throws(() => trainBpeFromCounts(counts, { vocabSize: 100 }), /vocabSize 100/);
});

test('trainBpe: deterministic and independent of document order', () => {
  const docs = buildCorpus({
    books: ['carroll-alice'],
    sotuFromYear: null,
    reviewRepeat: 1,
    shuffleSeed: null,
  }).train.map((d) => d.text);
  const a = trainBpe(docs, { vocabSize: 600 });
  const b = trainBpe([...docs].reverse(), { vocabSize: 600 });
  assert.equal(a.vocab.length, 600);
  assert.deepEqual(a, b);
});

test('own encoder: decode(encode(s)) === s on fixtures and random Unicode; encodes to known merges', () => {
  const enc = new ByteLevelBpe(fromTokenizerJson(readJson('tokenizer.json')));
  for (const s of [...fixtureTexts, ...randomTexts(400, 1)])
    assert.equal(enc.decode(enc.encode(s)), s, JSON.stringify(s));
  const eos = enc.specialId(EOS_TOKEN);
  assert.equal(eos, enc.vocabSize - 1);
  assert.deepEqual(enc.encode('<|endoftext|>'), [eos]);
  assert.equal(enc.decode([...enc.encode('Good film.'), eos], true), 'Good film.');
  // " the" is among the first merges of any English BPE (Ġ t, h e, Ġt he).
  assert.deepEqual(
    enc.encode(' the').map((i) => enc.vocab[i]),
    ['Ġthe'],
  );
});

test('@huggingface/tokenizers loads the written files and gives the same ids and text', () => {
  const tj = readJson('tokenizer.json');
  const hf = new Tokenizer(tj, readJson('tokenizer_config.json'));
  const enc = new ByteLevelBpe(fromTokenizerJson(tj));
  for (const s of [...fixtureTexts, ...randomTexts(400, 2)]) {
    const ids = hf.encode(s).ids;
    assert.deepEqual(enc.encode(s), ids, `ids differ for ${JSON.stringify(s)}`);
    if (ids.length > 0) assert.equal(hf.decode(ids), s, `HF decode differs for ${JSON.stringify(s)}`);
  }
  assert.equal(hf.token_to_id(EOS_TOKEN), 2047);
});

test('a freshly trained tokenizer, written and loaded by @huggingface/tokenizers, encodes held-out text alike', () => {
  const corpus = buildCorpus({ books: ['austen-persuasion'], sotuFromYear: null, reviewRepeat: 2 });
  const bpe = trainBpe(
    corpus.train.map((d) => d.text),
    { vocabSize: 512 },
  );
  const tj = JSON.parse(JSON.stringify(toTokenizerJson(bpe)));
  const hf = new Tokenizer(tj, toTokenizerConfig(bpe, { modelMaxLength: 128 }));
  const enc = new ByteLevelBpe(bpe);
  let bytes = 0,
    tokens = 0;
  for (const d of corpus.heldOut) {
    const ids = enc.encode(d.text);
    assert.deepEqual(hf.encode(d.text).ids, ids, d.text);
    bytes += Buffer.byteLength(d.text);
    tokens += ids.length;
  }
  assert.ok(bytes / tokens > 2, `only ${bytes / tokens} bytes per token with a 512 vocabulary`);
  assert.deepEqual(fromTokenizerJson(tj), bpe);
});

const rustIds = new URL('hf_ids.json', fixtures);
test(
  'Rust tokenizers / transformers ids (test/fixtures/demo/hf_ids.json)',
  { skip: !existsSync(rustIds) && 'hf_ids.json not made yet (gen_hf_tokenizer_ids.py)' },
  () => {
    const ref = JSON.parse(readFileSync(rustIds, 'utf8'));
    const enc = new ByteLevelBpe(fromTokenizerJson(readJson('tokenizer.json')));
    assert.equal(ref.transformers.eos_token_id, enc.vocabSize - 1);
    for (const c of ref.cases as { text: string; ids: number[]; transformers_ids: number[]; decoded: string }[]) {
      assert.deepEqual(enc.encode(c.text), c.ids, `ids differ from Rust tokenizers for ${JSON.stringify(c.text)}`);
      assert.deepEqual(c.transformers_ids, c.ids);
      assert.equal(c.decoded, c.text);
    }
  },
);
