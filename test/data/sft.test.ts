// SFT formats: {text}, {prompt, completion} (text and messages), {messages}, and preference rows read as
// prompt + chosen; loss spans, EOS rules, truncation and drops.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { preparePreferenceDataset, prepareSftDataset } from '../../src/data/index.js';
import { qwen3, readJson, ROOT, toyIds, toyTokenizer } from '../helpers/assets.js';

const BOS = 1,
  EOS = 2;
const expected = readJson(join(ROOT, 'test/tokenizer/chat-expected.json')) as Record<string, string>;

test(
  '{text}: every token in the loss, EOS appended unless ' + 'the text ends with it, BOS when the tokenizer adds it',
  () => {
    const tok = toyTokenizer({ addBos: true });
    const { examples, format, report } = prepareSftDataset([{ text: 'abc' }, { text: 'de</s>' }], tok);
    assert.deepEqual(format, { kind: 'text' });
    assert.deepEqual(examples, [
      { ids: [BOS, ...toyIds('abc'), EOS], promptLength: 0 },
      { ids: [BOS, ...toyIds('de'), EOS], promptLength: 0 },
    ]);
    assert.equal(report.format, 'text');
  },
);

test('{prompt, completion} text: loss on the completion only (or all with completionOnlyLoss false)', () => {
  const tok = toyTokenizer();
  const rows = [{ prompt: 'ab', completion: 'cd' }];
  assert.deepEqual(prepareSftDataset(rows, tok).examples, [{ ids: [...toyIds('abcd'), EOS], promptLength: 2 }]);
  assert.deepEqual(prepareSftDataset(rows, tok, { completionOnlyLoss: false }).examples[0].promptLength, 0);
});

test('{messages} and conversational {prompt, completion} with the Qwen3 template', () => {
  const tok = qwen3();
  const sysUser = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What color is the sky?' },
  ];
  const answer = { role: 'assistant', content: 'It is blue.' };
  const m = prepareSftDataset([{ messages: [...sysUser, answer] }], tok).examples[0];
  assert.deepEqual(m, { ids: tok.encode(expected.qwen3_full, { addSpecialTokens: false }), promptLength: 0 });
  const pc = prepareSftDataset([{ prompt: sysUser, completion: [answer] }], tok);
  assert.deepEqual(pc.format, { kind: 'prompt-completion', conversational: true });
  const promptIds = tok.encode(expected.qwen3_prompt, { addSpecialTokens: false });
  const completionIds = tok.encode(expected.qwen3_full.slice(expected.qwen3_prompt.length), {
    addSpecialTokens: false,
  });
  assert.deepEqual(pc.examples[0], { ids: [...promptIds, ...completionIds], promptLength: promptIds.length });
});

test('preference rows as SFT: prompt + chosen, the same ids as the DPO chosen sequence', () => {
  const tok = toyTokenizer({ addBos: true });
  const rows = [
    { prompt: 'ab', chosen: 'cd', rejected: 'ef' },
    { chosen: 'The sky is blue.', rejected: 'The sky is green.' },
  ];
  const sft = prepareSftDataset(rows.slice(0, 1), tok);
  const dpo = preparePreferenceDataset(rows.slice(0, 1), tok).examples[0];
  assert.deepEqual(sft.examples[0], { ids: [...dpo.promptIds, ...dpo.chosenIds], promptLength: dpo.promptIds.length });
  assert.equal(sft.report.format, 'preference prompt + chosen (standard, explicit prompt)');
  // Implicit prompt (a separate dataset: the format is fixed by the first row).
  const implicit = prepareSftDataset(rows.slice(1), tok).examples[0];
  assert.deepEqual(implicit, { ids: [BOS, ...toyIds('The sky is blue.'), EOS], promptLength: 11 });
  assert.throws(() => prepareSftDataset(rows, tok), /<memory> row index 1: field 'prompt': is missing/);
});

test(
  'SFT truncation keeps the start; an example whose prompt ' + 'fills maxLength is dropped; bad rows name the field',
  () => {
    const tok = toyTokenizer();
    const rows = [{ prompt: 'ab', completion: 'cdef' }, { prompt: 'abcdef', completion: 'g' }, { text: 'zz' }];
    const { examples, report } = prepareSftDataset(rows.slice(0, 2), tok, { maxLength: 5 });
    assert.deepEqual(examples, [{ ids: toyIds('abcde'), promptLength: 2 }]);
    assert.deepEqual([report.rows, report.truncated, report.dropped], [1, 1, 1]);
    assert.throws(
      () => prepareSftDataset([rows[0], { prompt: 'x', completion: 3 }], tok),
      /<memory> row index 1: field 'completion': is a number/,
    );
    assert.throws(() => prepareSftDataset([{ foo: 1 }], tok), /row index 0: has fields foo; SFT data needs 'text'/);
    const skipped = prepareSftDataset([rows[0], { prompt: 'x', completion: '' }], tok, { skipInvalid: true });
    assert.equal(skipped.report.skippedInvalid, 1);
    assert.throws(
      () => prepareSftDataset([{ messages: [{ role: 'user', content: 'hi' }] }], tok, { skipInvalid: true }),
      /has no chat template/,
    );
  },
);
