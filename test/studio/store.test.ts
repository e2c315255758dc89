// The studio's store: schema versions, the TRL rows its labels make (A/B, edit, ties and both-bad
// only when asked, undone labels and skips never), import, agreement, the comparison's win rate,
// and export files that read back as the database's rows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readRecordsFromFile } from '../../src/data/read.js';
import { writeRows } from '../../src/studio/store/export.js';
import { SCHEMA_VERSION } from '../../src/studio/store/schema.js';
import { Store } from '../../src/studio/store/store.js';
import { tempDir } from '../helpers/assets.js';

function pairOf(
  s: Store,
  prompt: string,
  a: string,
  b: string,
  kind: 'collect' | 'compare' = 'collect',
  sources = ['model', 'model'],
  run: string | null = null,
) {
  s.addPrompts([prompt], 'test', kind === 'compare');
  const id = (s.db.prepare('SELECT id FROM prompts WHERE text = ?').get(prompt) as { id: number }).id;
  return s.addPair({
    prompt_id: id,
    kind,
    a_text: a,
    b_text: b,
    a_source: sources[0],
    b_source: sources[1],
    swapped: 0,
    run,
  });
}

test('a new database is WAL at the current schema version; a newer one is refused', () => {
  const file = join(tempDir(), 's.db');
  const s = new Store(file);
  assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(s.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  s.close();
  new Store(file).close(); // reopening applies nothing twice
  const raw = new Database(file);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  assert.throws(() => new Store(file), /schema version 2 is newer than this tsdpo's \(1\)/);
});

test('labels make TRL rows: A/B, edits; ties and both-bad only when asked; skips and undone labels never', () => {
  const s = new Store(join(tempDir(), 's.db'));
  const p1 = pairOf(s, 'p1', 'a1', 'b1'),
    p2 = pairOf(s, 'p2', 'a2', 'b2'),
    p3 = pairOf(s, 'p3', 'a3', 'b3');
  const p4 = pairOf(s, 'p4', 'a4', 'b4'),
    p5 = pairOf(s, 'p5', 'a5', 'b5'),
    p6 = pairOf(s, 'p6', 'a6', 'b6');
  s.label({ pairId: p1.id, labeler: 'ann', verdict: 'a' });
  s.label({ pairId: p2.id, labeler: 'ann', verdict: 'b' });
  s.label({ pairId: p3.id, labeler: 'ann', verdict: 'edit', editedSide: 'b', editedText: 'better b3' });
  s.label({ pairId: p4.id, labeler: 'ann', verdict: 'tie' });
  s.label({ pairId: p5.id, labeler: 'ann', verdict: 'both_bad' });
  s.label({ pairId: p6.id, labeler: 'ann', verdict: 'skip' });
  s.label({ pairId: p6.id, labeler: 'ann', verdict: 'a' });
  assert.equal(s.undo('ann')?.id, p6.id, 'undo takes back the latest label');
  assert.deepEqual(s.exportRows(), [
    { prompt: 'p1', chosen: 'a1', rejected: 'b1' },
    { prompt: 'p2', chosen: 'b2', rejected: 'a2' },
    { prompt: 'p3', chosen: 'better b3', rejected: 'b3' },
  ]);
  assert.deepEqual(s.exportRows({ ties: true, bothBad: true }).slice(3), [
    { prompt: 'p4', chosen: 'a4', rejected: 'b4', verdict: 'tie' },
    { prompt: 'p5', chosen: 'a5', rejected: 'b5', verdict: 'both_bad' },
  ]);
  assert.equal(s.pendingPair('ann', 'collect')?.id, undefined, 'the skipped pair counts as seen');
  assert.equal(s.pendingPair('bob', 'collect')?.id, p1.id, 'another labeler gets the pairs first (overlap)');
  assert.throws(
    () => s.label({ pairId: p1.id, labeler: 'ann', verdict: 'edit', editedSide: 'a', editedText: ' ' }),
    /non-empty editedText/,
  );
  assert.throws(() => s.label({ pairId: 999, labeler: 'ann', verdict: 'a' }), /no pair 999/);
  assert.throws(
    () => s.label({ pairId: p1.id, labeler: 'ann', verdict: 'edit', editedSide: 'a', editedText: 'a1' }),
    /is the original text/,
  );
  const p = s.progress('ann');
  assert.equal(p.mine, 5);
  assert.equal(p.verdicts.skip, 1);
});

test('agreement counts the labeler pairs that gave the same verdict on a shared pair', () => {
  const s = new Store(join(tempDir(), 's.db'));
  const x = pairOf(s, 'x', 'a', 'b'),
    y = pairOf(s, 'y', 'a', 'b'),
    z = pairOf(s, 'z', 'a', 'b');
  for (const [pair, ann, bob] of [
    [x, 'a', 'a'],
    [y, 'a', 'b'],
    [z, 'tie', 'tie'],
  ] as const) {
    s.label({ pairId: pair.id, labeler: 'ann', verdict: ann });
    s.label({ pairId: pair.id, labeler: 'bob', verdict: bob });
  }
  s.label({ pairId: x.id, labeler: 'cy', verdict: 'b' });
  const a = s.agreement();
  assert.equal(a.pairs, 3);
  // x: ann-bob agree, ann-cy and bob-cy not; y: disagree; z: agree -> 2 of 5.
  assert.equal(a.rate, 2 / 5);
  assert.deepEqual(
    a.byLabelers.find((r) => r.a === 'ann' && r.b === 'bob'),
    { a: 'ann', b: 'bob', overlap: 3, agree: 2 },
  );
});

test('the blind comparison scores the policy 1 / 0 / 1/2 whichever side it was on', () => {
  const s = new Store(join(tempDir(), 's.db'));
  const left = pairOf(s, 'h1', 'pol', 'ref', 'compare', ['policy', 'reference'], 'run-1');
  const right = pairOf(s, 'h2', 'ref', 'pol', 'compare', ['reference', 'policy'], 'run-1');
  const tie = pairOf(s, 'h3', 'ref', 'pol', 'compare', ['reference', 'policy'], 'run-1');
  s.label({ pairId: left.id, labeler: 'ann', verdict: 'a' }); // policy wins
  s.label({ pairId: right.id, labeler: 'ann', verdict: 'a' }); // reference wins
  s.label({ pairId: tie.id, labeler: 'ann', verdict: 'tie' }); // 1/2
  const r = s.compareResult('run-1');
  assert.equal(r.n, 3);
  assert.equal(r.winRate, 0.5);
  assert.ok(Math.abs(r.stderr! - 0.5 / Math.sqrt(3)) < 1e-12, `stderr ${r.stderr}`); // sd of {1, 0, .5} is 0.5
  assert.deepEqual(s.exportRows(), [], 'comparison judgments are not training data');
});

test(
  'export files (JSON lines, Parquet, conversational) ' + 'read back as the database rows; import adds them back',
  async () => {
    const dir = tempDir();
    const s = new Store(join(dir, 's.db'));
    const p = pairOf(s, 'a <b>prompt</b> "quoted"\nline two', 'x ü', 'y');
    s.label({ pairId: p.id, labeler: 'ann', verdict: 'b' });
    const rows = s.exportRows();
    for (const f of ['out.jsonl', 'out.parquet']) {
      writeRows(join(dir, f), rows, false);
      assert.deepEqual(
        (await readRecordsFromFile(join(dir, f))).map((r) => r.value),
        rows,
        f,
      );
    }
    writeRows(join(dir, 'chat.jsonl'), rows, true);
    assert.deepEqual((await readRecordsFromFile(join(dir, 'chat.jsonl')))[0].value, {
      prompt: [{ role: 'user', content: rows[0].prompt }],
      chosen: [{ role: 'assistant', content: 'y' }],
      rejected: [{ role: 'assistant', content: 'x ü' }],
    });
    assert.throws(() => writeRows(join(dir, 'x.csv'), rows, false), /x\.csv: export writes \.jsonl or \.parquet/);
    const t = new Store(join(dir, 't.db'));
    assert.equal(t.importRows(rows, 'import:out.jsonl', 'import'), 1);
    assert.deepEqual(t.exportRows(), rows);
  },
);
