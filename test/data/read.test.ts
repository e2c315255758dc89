// Reading dataset files: JSON lines, JSON arrays / columns / field, Parquet (written here with
// hyparquet-writer), dataset folders with splits, and where malformed input is reported.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DataError, listSplits, loadRecords, readRecordsFromFile, resolveSplitFiles } from '../../src/data/index.js';
import { tempDir } from '../helpers/assets.js';

const rows = [
  { prompt: 'p0', chosen: 'c0', rejected: 'r0' },
  { prompt: 'p1', chosen: 'c1', rejected: 'r1' },
];
const jsonl = (rs: unknown[]) => rs.map((r) => JSON.stringify(r)).join('\n') + '\n';

function writeParquet(path: string, data: Array<Record<string, unknown>>): void {
  const names = Object.keys(data[0]);
  const buf = parquetWriteBuffer({
    columnData: names.map((name) => ({ name, data: data.map((r) => r[name]) as never })),
  });
  writeFileSync(path, new Uint8Array(buf));
}

test('JSON lines: rows with 1-based lines, blank lines skipped, malformed line kept as an error record', async () => {
  const dir = tempDir();
  const f = join(dir, 'd.jsonl');
  writeFileSync(f, JSON.stringify(rows[0]) + '\n\n' + '{"prompt": "p1", oops}\n' + JSON.stringify(rows[1]) + '\n');
  const recs = await readRecordsFromFile(f);
  assert.equal(recs.length, 3);
  assert.deepEqual(recs[0], { value: rows[0], where: { file: f, line: 1 } });
  assert.equal(recs[1].where.line, 3);
  assert.match(recs[1].error!, /malformed JSON/);
  assert.deepEqual(recs[2].where, { file: f, line: 4 });
});

test('.json: array of rows, object of columns, {"train": [...]} with field, JSON lines in a .json file', async () => {
  const dir = tempDir();
  const arr = join(dir, 'arr.json');
  writeFileSync(arr, JSON.stringify(rows, null, 2));
  assert.deepEqual(
    (await readRecordsFromFile(arr)).map((r) => [r.value, r.where.row]),
    [
      [rows[0], 0],
      [rows[1], 1],
    ],
  );

  const cols = join(dir, 'cols.json');
  writeFileSync(cols, JSON.stringify({ prompt: ['p0', 'p1'], chosen: ['c0', 'c1'], rejected: ['r0', 'r1'] }, null, 1));
  assert.deepEqual(
    (await readRecordsFromFile(cols)).map((r) => r.value),
    rows,
  );

  const nested = join(dir, 'nested.json');
  writeFileSync(nested, JSON.stringify({ version: 1, train: rows }, null, 1));
  assert.deepEqual(
    (await readRecordsFromFile(nested, { field: 'train' })).map((r) => r.value),
    rows,
  );
  await assert.rejects(readRecordsFromFile(nested), /needs the field option/);
  await assert.rejects(
    readRecordsFromFile(nested, { field: 'test' }),
    /field 'test': not in the file \(its keys: version, train\)/,
  );

  const lines = join(dir, 'lines.json');
  writeFileSync(lines, jsonl(rows));
  assert.deepEqual(
    (await readRecordsFromFile(lines)).map((r) => [r.value, r.where.line]),
    [
      [rows[0], 1],
      [rows[1], 2],
    ],
  );

  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '[\n {"prompt": "a"},\n {"prompt": }\n]');
  await assert.rejects(
    readRecordsFromFile(bad),
    (e: unknown) => e instanceof DataError && /bad\.json line 3: malformed JSON in row index 1/.test(e.message),
  );
  await assert.rejects(readRecordsFromFile(join(dir, 'x.csv')), /unknown file type '\.csv'/);
});

test('Parquet: strings and nested message lists come back as rows with row indices', async () => {
  const dir = tempDir();
  const f = join(dir, 'd.parquet');
  const data = [
    { prompt: [{ role: 'user', content: 'Hi' }], chosen: [{ role: 'assistant', content: 'Hello!' }], score: 1.5 },
    { prompt: [{ role: 'user', content: 'Yo' }], chosen: [{ role: 'assistant', content: 'Hey.' }], score: 2 },
  ];
  writeParquet(f, data);
  const recs = await readRecordsFromFile(f);
  assert.deepEqual(
    recs.map((r) => r.value),
    data,
  );
  assert.deepEqual(
    recs.map((r) => r.where),
    [
      { file: f, row: 0 },
      { file: f, row: 1 },
    ],
  );
  writeFileSync(join(dir, 'broken.parquet'), 'not parquet at all');
  await assert.rejects(readRecordsFromFile(join(dir, 'broken.parquet')), /broken\.parquet: cannot read Parquet/);
});

test('dataset folders: train/test files, HF data/ shards, names without a split are train', async () => {
  const a = tempDir();
  writeFileSync(join(a, 'train.jsonl'), jsonl(rows));
  writeFileSync(join(a, 'test.jsonl'), jsonl(rows.slice(0, 1)));
  writeFileSync(join(a, 'README.md'), '# card');
  assert.deepEqual(resolveSplitFiles(a, 'train'), [join(a, 'train.jsonl')]);
  assert.deepEqual(resolveSplitFiles(a, 'eval'), [join(a, 'test.jsonl')]); // alias of test
  assert.deepEqual(listSplits(a).sort(), ['test', 'train']);
  assert.throws(() => resolveSplitFiles(a, 'validation'), /no 'validation' split .* found splits 'test', 'train'/);
  assert.equal((await loadRecords(a, { split: 'test' })).records.length, 1);

  const b = tempDir();
  mkdirSync(join(b, 'data'));
  for (const [i, name] of [
    'train-00001-of-00002.parquet',
    'train-00000-of-00002.parquet',
    'test-00000-of-00001.parquet',
  ].entries()) {
    writeParquet(join(b, 'data', name), [{ ...rows[0], chosen: `c${i}` }]);
  }
  const { records, files } = await loadRecords(b);
  assert.deepEqual(files, [join(b, 'data/train-00000-of-00002.parquet'), join(b, 'data/train-00001-of-00002.parquet')]);
  assert.deepEqual(
    records.map((r) => (r.value as { chosen: string }).chosen),
    ['c1', 'c0'],
  );

  const c = tempDir();
  writeFileSync(join(c, 'prefs.jsonl'), jsonl(rows));
  writeFileSync(join(c, 'contest.json'), JSON.stringify(rows)); // "test" inside a word is no split
  assert.deepEqual(resolveSplitFiles(c), [join(c, 'contest.json'), join(c, 'prefs.jsonl')]);
});
