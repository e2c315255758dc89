// The demo corpus: deterministic, clean, split without overlap, review sentences up-weighted as
// asked, and every source it uses has its licence written down in docs/data-licences.md.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Corpus, DEFAULT_CORPUS, buildCorpus } from '../../src/demo/corpus.js';

const root = new URL('../../../', import.meta.url);
const full = buildCorpus(); // defaults; about 3 s
const texts = (c: Corpus, part: 'train' | 'heldOut') => c[part].map((d) => d.text);

test('corpus: the same documents in the same order on a second build', () => {
  const again = buildCorpus();
  assert.deepEqual(again.train, full.train);
  assert.deepEqual(again.heldOut, full.heldOut);
  assert.deepEqual(again.sources, full.sources);
});

test('corpus: a few MB, every source present, documents are clean single lines', () => {
  const chars = full.train.reduce((n, d) => n + d.text.length, 0);
  assert.ok(chars > 4e6 && chars < 2e7, `train has ${chars} characters`);
  const ids = new Set(full.sources.map((s) => s.id));
  for (const d of [...full.train, ...full.heldOut]) {
    assert.ok(ids.has(d.source), d.source);
    assert.ok(d.text.length > 0 && d.text === d.text.trim(), JSON.stringify(d.text));
    assert.ok(
      !/[\n\r\t\x00-\x1f\x7f-\x9f]|  |_/.test(d.text),
      `unclean document: ${JSON.stringify(d.text.slice(0, 80))}`,
    );
  }
  for (const s of full.sources) assert.ok(s.docs > 100 && s.chars > 0 && s.heldOutDocs > 0, s.id);
});

test('corpus: known sentences survive clean-up; headings and stage directions do not', () => {
  const all = new Set([...texts(full, 'train'), ...texts(full, 'heldOut')]);
  const prose = [...full.train, ...full.heldOut].filter((d) => !d.source.startsWith('reviews/'));
  // From sentiment's imdb.json (trailing spaces and a Windows-1252 ellipsis in the original).
  assert.ok(all.has('A very, very, very slow-moving, aimless movie about a distressed, drifting young man.'));
  assert.ok(all.has('The script is...was there a script?'));
  // First paragraph of Emma, hard line breaks joined.
  assert.ok(
    all.has(
      'Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition, ' +
        'seemed to unite some of the best blessings of existence; and had lived nearly twenty-one years in the world ' +
        'with very little to distress or vex her.',
    ),
  );
  for (const { source, text: t } of prose) {
    assert.ok(!/^(CHAPTER|VOLUME)\b/.test(t) && !/^\[.*\]$/.test(t), `heading kept: ${t.slice(0, 60)}`);
    if (source !== 'sotu') continue;
    assert.ok(!/\[applause\]|\(applause\.\)|\[laughter\]/i.test(t), `stage direction kept: ${t.slice(0, 60)}`);
  }
});

test('corpus: train and held-out share no document; reviews repeat reviewRepeat times', () => {
  const held = new Set(texts(full, 'heldOut'));
  assert.equal(held.size, full.heldOut.length);
  for (const t of texts(full, 'train')) assert.ok(!held.has(t), `in both splits: ${t.slice(0, 60)}`);
  const counts = new Map<string, number>();
  for (const d of full.train) if (d.source.startsWith('reviews/')) counts.set(d.text, (counts.get(d.text) ?? 0) + 1);
  for (const [t, n] of counts) assert.equal(n, DEFAULT_CORPUS.reviewRepeat, t);
  const imdb = full.sources.find((s) => s.id === 'reviews/imdb')!;
  assert.equal(
    counts.size + full.sources.filter((s) => s.kind === 'review').reduce((n, s) => n + s.heldOutDocs, 0),
    full.sources.filter((s) => s.kind === 'review').reduce((n, s) => n + s.docs, 0),
  );
  const share = imdb.heldOutDocs / imdb.docs;
  assert.ok(share > 0.06 && share < 0.14, `imdb held-out share ${share}`);
});

test('corpus: options change the mix as documented', () => {
  const small = buildCorpus({
    books: [],
    sotuFromYear: null,
    reviewSets: ['imdb'],
    reviewRepeat: 3,
    shuffleSeed: null,
  });
  assert.deepEqual(
    small.sources.map((s) => s.id),
    ['reviews/imdb'],
  );
  const imdbTrain = full.train.filter((d) => d.source === 'reviews/imdb').length / DEFAULT_CORPUS.reviewRepeat;
  assert.equal(small.train.length, imdbTrain * 3);
  // Without a shuffle, each sentence's copies sit together in file order.
  assert.equal(small.train[0]!.text, small.train[2]!.text);
  assert.throws(() => buildCorpus({ reviewRepeat: -1 }), /reviewRepeat/);
  assert.throws(() => buildCorpus({ proseHeldOutFraction: 1 }), /proseHeldOutFraction/);
  assert.throws(() => buildCorpus({ books: ['no-such-book' as never] }), /no-such-book/);
});

test('licences: docs/data-licences.md records every source used, with its package version and licences', () => {
  const doc = readFileSync(new URL('docs/data-licences.md', root), 'utf8');
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
  const declared = { ...pkg.dependencies, ...pkg.devDependencies };
  for (const s of full.sources) {
    const row = doc.split('\n').find((l) => l.startsWith(`| ${s.id} |`));
    assert.ok(row, `docs/data-licences.md has no table row starting "| ${s.id} |"`);
    for (const field of [
      `${s.pkg}@${s.version}`,
      s.file,
      s.packageLicence,
      s.textLicence,
      String(s.docs),
      String(s.chars),
    ]) {
      assert.ok(
        row.includes(field),
        `row of ${s.id} lacks "${field}" (update docs/data-licences.md from the manifest)`,
      );
    }
    assert.ok(s.pkg in declared, `${s.pkg} is not in package.json, so npm ci would not install it`);
  }
});
