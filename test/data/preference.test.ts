// Preference formats (standard, conversational, implicit prompt for text and conversations, Anthropic HH),
// column mapping, and the errors for bad rows: file, line or row, and field in every message.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DataError,
  detectPreferenceFormat,
  loadPreferenceDataset,
  preferenceText,
  preparePreferenceDataset,
  type PreferenceFormat,
  type RawRecord,
} from '../../src/data/index.js';
import { qwen3, readJson, ROOT, tempDir, toyTokenizer } from '../helpers/assets.js';

const expected = readJson(join(ROOT, 'test/tokenizer/chat-expected.json')) as Record<string, string>;
const at = { file: 'd.jsonl', line: 1 };
const standard: PreferenceFormat = { conversational: false, prompt: 'explicit' };
const fmtOf = (row: Record<string, unknown>) => detectPreferenceFormat(row, at);
const text = (row: Record<string, unknown>) => preferenceText(row, fmtOf(row), null, at);
const recs = (rows: unknown[], file = 'd.jsonl'): RawRecord[] =>
  rows.map((value, i) => ({ value, where: { file, line: i + 1 } }));

test('standard rows pass through; columns can be mapped', () => {
  const row = { prompt: 'Q: 2+2?', chosen: ' 4', rejected: ' 5' };
  assert.deepEqual(fmtOf(row), standard);
  assert.deepEqual(text(row), { prompt: 'Q: 2+2?', chosen: ' 4', rejected: ' 5' });
  const mapped = { question: 'Q', good: 'A', bad: 'B' };
  const cols = { prompt: 'question', chosen: 'good', rejected: 'bad' };
  const f = detectPreferenceFormat(mapped, at, cols);
  assert.deepEqual(preferenceText(mapped, f, null, at, cols), { prompt: 'Q', chosen: 'A', rejected: 'B' });
});

test('implicit prompt (text): TRL extract_prompt, the space before the difference goes to the completions', () => {
  const row = { chosen: 'The sky is blue.', rejected: 'The sky is green.' };
  assert.deepEqual(fmtOf(row), { conversational: false, prompt: 'implicit' });
  assert.deepEqual(text(row), { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' });
  // One a prefix of the other: Python's loop leaves the index on the last shared character.
  assert.deepEqual(text({ chosen: 'ab', rejected: 'abc' }), { prompt: 'a', chosen: 'b', rejected: 'bc' });
  // Indexing by code points, as Python does: the emoji is not split.
  assert.deepEqual(text({ chosen: 'x🤖a', rejected: 'x🤖b' }), { prompt: 'x🤖', chosen: 'a', rejected: 'b' });
});

test('Anthropic HH: the prompt ends at the last "\\n\\nAssistant:" even when the answers share words', () => {
  const dialog = '\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: What color is the sky?\n\nAssistant:';
  const row = { chosen: dialog + ' Blue, mostly.', rejected: dialog + ' Blue-green.' };
  assert.deepEqual(fmtOf(row), { conversational: false, prompt: 'hh' });
  assert.deepEqual(text(row), { prompt: dialog, chosen: ' Blue, mostly.', rejected: ' Blue-green.' });
  // Forcing the shared-prefix rule gives TRL's answer instead.
  const f = detectPreferenceFormat(row, at, {}, 'implicit');
  assert.equal(preferenceText(row, f, null, at).prompt, dialog + ' Blue');
  assert.throws(
    () => preferenceText({ chosen: row.chosen, rejected: '\n\nHuman: Other\n\nAssistant: x' }, fmtOf(row), null, at),
    /d\.jsonl line 1: field 'rejected': does not start with the same dialogue/,
  );
});

test('conversational, explicit prompt: TRL chat-template rules with the Qwen3 template', () => {
  const tok = qwen3();
  const sysUser = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What color is the sky?' },
  ];
  const row = {
    prompt: sysUser,
    chosen: [{ role: 'assistant', content: 'It is blue.' }],
    rejected: [{ role: 'assistant', content: 'It is green.' }],
  };
  const f = fmtOf(row);
  assert.deepEqual(f, { conversational: true, prompt: 'explicit' });
  const t = preferenceText(row, f, tok, at);
  assert.equal(t.prompt, expected.qwen3_prompt);
  assert.equal(t.chosen, expected.qwen3_full.slice(expected.qwen3_prompt.length));
  assert.equal(t.chosen, '<think>\n\n</think>\n\nIt is blue.<|im_end|>\n');
  assert.equal(t.rejected, '<think>\n\n</think>\n\nIt is green.<|im_end|>\n');

  // Implicit prompt in conversations: the shared leading messages.
  const implicit = { chosen: [...sysUser, row.chosen[0]], rejected: [...sysUser, row.rejected[0]] };
  assert.deepEqual(fmtOf(implicit), { conversational: true, prompt: 'implicit' });
  assert.deepEqual(preferenceText(implicit, fmtOf(implicit), tok, at), t);
  // A text prompt column next to conversations that contain it: extracted too (TRL maybe_extract_prompt).
  const mixed = { prompt: 'What color is the sky?', ...implicit };
  assert.deepEqual(fmtOf(mixed), { conversational: true, prompt: 'implicit' });
  assert.deepEqual(preferenceText(mixed, fmtOf(mixed), tok, at), t);

  // A prompt ending with an assistant turn is rendered open (continued); Qwen3's template then closes it
  // before the next assistant message, so the prompt is no prefix of prompt + chosen: TRL raises, so do we.
  const cont = {
    prompt: [...sysUser, { role: 'assistant', content: 'The sky is' }],
    chosen: [{ role: 'assistant', content: ' blue.' }],
    rejected: [{ role: 'assistant', content: ' red.' }],
  };
  assert.throws(
    () => preferenceText(cont, fmtOf(cont), tok, at),
    (e: unknown) =>
      e instanceof Error &&
      e.message.includes(`Prompt: ${JSON.stringify(expected.qwen3_continue)}`) &&
      /field 'chosen': the chat template applied to prompt \+ chosen does not start with/.test(e.message),
  );
  assert.throws(
    () => preferenceText({ ...row, prompt: [{ role: 'system', content: 'x' }] }, f, tok, at),
    /field 'prompt': ends with a 'system' message/,
  );
});

test('bad rows: each error names the file, the line (or row index) and the field', () => {
  const tok = toyTokenizer();
  const good = { prompt: 'p', chosen: 'c', rejected: 'r' };
  const cases: Array<[unknown, RegExp]> = [
    [{ prompt: 'p', rejected: 'r' }, /d\.jsonl line 2: field 'chosen': is missing/],
    [{ ...good, rejected: '' }, /d\.jsonl line 2: field 'rejected': is empty/],
    [{ ...good, chosen: 7 }, /d\.jsonl line 2: field 'chosen': is a number; expected a string/],
    [{ ...good, prompt: null }, /d\.jsonl line 2: field 'prompt': is missing/],
    [
      { ...good, chosen: [{ role: 'assistant', content: 'c' }] },
      /line 2: field 'chosen': is an array; expected a string/,
    ],
    [{ ...good, rejected: 'c' }, /d\.jsonl line 2: field 'chosen': is identical to 'rejected'/],
    ['just a string', /d\.jsonl line 2: is a string; expected an object/],
  ];
  for (const [bad, re] of cases) {
    assert.throws(
      () => preparePreferenceDataset(recs([good, bad]), tok),
      (e: unknown) => e instanceof DataError && re.test(e.message),
      String(re),
    );
  }
  // Conversational rows: the message and its key.
  const q = qwen3();
  const conv = {
    prompt: [{ role: 'user', content: 'hi' }],
    chosen: [{ role: 'assistant', content: 'a' }],
    rejected: [{ role: 'assistant', content: 'b' }],
  };
  const convCases: Array<[unknown, RegExp]> = [
    [
      { ...conv, chosen: [{ role: 'assistant', content: 'a' }, { content: 'x' }] },
      /line 2: field 'chosen\[1\]\.role': is missing; expected a string/,
    ],
    [
      { ...conv, rejected: [{ role: 'assistant', content: [{ type: 'text', text: 'b' }] }] },
      /field 'rejected\[0\]\.content': is an array; expected a string/,
    ],
    [{ ...conv, rejected: [] }, /field 'rejected': is an empty list of messages/],
    [{ ...conv, prompt: 'hi' }, /field 'prompt': is a string; expected a list of \{role, content\} messages/],
    [{ ...conv, rejected: conv.chosen }, /field 'chosen': is identical to 'rejected'/],
  ];
  for (const [bad, re] of convCases) {
    assert.throws(
      () => preparePreferenceDataset(recs([conv, bad]), q),
      (e: unknown) => e instanceof DataError && re.test(e.message),
      String(re),
    );
  }
  // Parquet / JSON-array rows are named by row index.
  const rows: RawRecord[] = [good, { ...good, chosen: '' }].map((value, row) => ({
    value,
    where: { file: 'd.parquet', row },
  }));
  assert.throws(() => preparePreferenceDataset(rows, tok), /d\.parquet row index 1: field 'chosen': is empty/);
});

test('files: a malformed JSON line is reported with file and line, or skipped and counted', async () => {
  const dir = tempDir();
  const f = join(dir, 'train.jsonl');
  writeFileSync(
    f,
    [
      JSON.stringify({ prompt: 'p', chosen: 'a', rejected: 'b' }),
      '{"prompt": "p", "chosen": "a", ',
      JSON.stringify({ prompt: 'p', chosen: 'a', rejected: '' }),
      JSON.stringify({ prompt: 'q', chosen: 'c', rejected: 'd' }),
    ].join('\n'),
  );
  const tok = toyTokenizer();
  await assert.rejects(
    loadPreferenceDataset(dir, tok),
    (e: unknown) => e instanceof DataError && e.message.startsWith(`${f} line 2: malformed JSON`),
  );
  const { report, examples, sources } = await loadPreferenceDataset(dir, tok, { skipInvalid: true });
  assert.equal(report.read, 4);
  assert.equal(report.rows, 2);
  assert.equal(report.skippedInvalid, 2);
  assert.match(report.invalid[1], /line 3: field 'rejected': is empty/);
  assert.deepEqual(
    sources.map((s) => s.line),
    [1, 4],
  );
  assert.equal(examples.length, 2);
  assert.equal(report.format, 'standard, explicit prompt');
  assert.deepEqual(report.files, [f]);
});

test('conversational data without a chat template stops, even with skipInvalid', () => {
  const conv = {
    prompt: [{ role: 'user', content: 'hi' }],
    chosen: [{ role: 'assistant', content: 'a' }],
    rejected: [{ role: 'assistant', content: 'b' }],
  };
  assert.throws(
    () => preparePreferenceDataset(recs([conv]), toyTokenizer(), { skipInvalid: true }),
    /d\.jsonl line 1 is conversational .* has no chat template/,
  );
});
