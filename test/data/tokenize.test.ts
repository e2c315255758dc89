// Tokenization rules: separate prompt/completion encoding, BOS exactly once, EOS after each completion,
// truncation (prompt first, keep_end / keep_start), drops, and the pipeline's report.
// The toy tokenizer maps each character to one id (test/helpers/assets.ts), so expected ids are written by hand.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { preparePreferenceDataset, tokenizePreference, truncatePrompt } from '../../src/data/index.js';
import { createTokenizer } from '../../src/tokenizer/index.js';
import { gpt2, llama3, LLAMA3_DIR, qwen3, readJson, toyIds, toyTokenizer } from '../helpers/assets.js';

const BOS = 1,
  EOS = 2;
const TEMPLATE =
  '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content ' +
  '}}|{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}';
const NO_BOS_TEMPLATE =
  '{% for m in messages %}[{{ m.role }}]{{ m.content }}|{% ' +
  'endfor %}{% if add_generation_prompt %}[assistant]{% endif %}';
const conv = (c: string, r: string) => ({
  prompt: [{ role: 'user', content: 'hi' }],
  chosen: [{ role: 'assistant', content: c }],
  rejected: [{ role: 'assistant', content: r }],
});
const count = (ids: number[], id: number) => ids.filter((x) => x === id).length;

test(
  'text: prompt and completions encoded apart, EOS closes ' + 'each completion, BOS only if the tokenizer adds it',
  () => {
    const row = { prompt: 'ab', chosen: 'c', rejected: 'de' };
    const plain = tokenizePreference(toyTokenizer(), row)!.value;
    assert.deepEqual(plain, {
      promptIds: toyIds('ab'),
      chosenIds: [...toyIds('c'), EOS],
      rejectedIds: [...toyIds('de'), EOS],
    });
    const withBos = tokenizePreference(toyTokenizer({ addBos: true }), row)!.value;
    assert.deepEqual(withBos.promptIds, [BOS, ...toyIds('ab')]);
    assert.deepEqual(withBos.chosenIds, [...toyIds('c'), EOS]); // no BOS in front of a completion
    // A prompt text that already starts with BOS keeps just that one.
    assert.deepEqual(tokenizePreference(toyTokenizer({ addBos: true }), { ...row, prompt: '<s>ab' })!.value.promptIds, [
      BOS,
      ...toyIds('ab'),
    ]);
  },
);

test('BOS exactly once with chat templates: template with bos_token x tokenizer adding BOS', () => {
  const cases: Array<[boolean, string, number]> = [
    [true, TEMPLATE, 1], // template writes BOS, tokenizer adds BOS: not doubled
    [true, NO_BOS_TEMPLATE, 1], // template without BOS, tokenizer adds BOS: prepended
    [false, TEMPLATE, 1], // template writes BOS, tokenizer does not add it: kept as rendered
    [false, NO_BOS_TEMPLATE, 0], // neither
  ];
  for (const [addBos, template, bosCount] of cases) {
    const tok = toyTokenizer({ addBos, template });
    const { examples } = preparePreferenceDataset([conv('yes', 'no')], tok);
    const p = examples[0].promptIds;
    assert.equal(count(p, BOS), bosCount, `addBos ${addBos}, ${template === TEMPLATE ? 'BOS' : 'no BOS'} template`);
    if (bosCount) assert.equal(p[0], BOS);
    assert.deepEqual(p.slice(bosCount), toyIds('[user]hi|[assistant]'));
    // Conversational completions end where the template closes the turn: no EOS added (TRL 1.13).
    assert.deepEqual(examples[0].chosenIds, toyIds('yes|'));
    assert.deepEqual(examples[0].rejectedIds, toyIds('no|'));
  }
});

test('BOS once with the real Llama-3 template (starts with <|begin_of_text|>) and add_bos_token', () => {
  const base = llama3();
  const addsBos = createTokenizer({
    tokenizerJson: readJson(join(LLAMA3_DIR, 'tokenizer.json')),
    tokenizerConfig: { ...readJson(join(LLAMA3_DIR, 'tokenizer_config.json')), add_bos_token: true },
  });
  assert.equal(addsBos.addsBos, true);
  const row = {
    prompt: [{ role: 'user', content: 'Hello world' }],
    chosen: [{ role: 'assistant', content: 'Hi' }],
    rejected: [{ role: 'assistant', content: 'Go away' }],
  };
  for (const tok of [base, addsBos]) {
    const p = preparePreferenceDataset([row], tok).examples[0].promptIds;
    assert.equal(p[0], 128000);
    assert.equal(count(p, 128000), 1);
    // <|start_header_id|>user<|end_header_id|>\n\nHello world<|eot_id|> ...
    assert.deepEqual(p.slice(1, 7), [128006, 882, 128007, 271, 9906, 1917]);
  }
});

test(
  'real tokenizers: no merge across the prompt/completion boundary; a ' +
    'text completion ends with EOS, a conversational one with its template',
  () => {
    const g = tokenizePreference(gpt2(), { prompt: 'Hello', chosen: ' world', rejected: ' there' })!.value;
    assert.deepEqual(g.promptIds, [15496]);
    assert.deepEqual(g.chosenIds, [995, 50256]);
    const q = preparePreferenceDataset([conv('Blue.', 'Red.')], qwen3()).examples[0];
    assert.deepEqual(q.promptIds.slice(0, 3), [151644, 872, 198]); // <|im_start|>user\n, no BOS
    // the template's "<|im_end|>\n", nothing appended (TRL 1.13)
    assert.deepEqual(q.chosenIds.slice(-2), [151645, 198]);
    // A text completion that already ends with the EOS token gets no second one (TRL checks endswith(eos_token)).
    assert.deepEqual(
      tokenizePreference(gpt2(), { prompt: 'Hello', chosen: ' world<|endoftext|>', rejected: ' there' })!.value
        .chosenIds,
      [995, 50256],
    );
  },
);

test('truncation: prompt to maxPromptLength (keep_end keeps BOS, keep_start), completions to fit maxLength', () => {
  assert.deepEqual(truncatePrompt([BOS, 10, 11, 12, 13, 14], 3, 'keep_end', BOS), [BOS, 13, 14]);
  assert.deepEqual(truncatePrompt([10, 11, 12, 13, 14], 3, 'keep_end', BOS), [12, 13, 14]);
  assert.deepEqual(truncatePrompt([BOS, 10, 11, 12, 13, 14], 3, 'keep_start', BOS), [BOS, 10, 11]);
  assert.deepEqual(truncatePrompt([10, 11], 3, 'keep_end', BOS), [10, 11]);

  const tok = toyTokenizer({ addBos: true });
  const row = { prompt: 'abcdef', chosen: 'xyz', rejected: 'q' };
  const t = tokenizePreference(tok, row, { maxPromptLength: 4, maxLength: 7 })!;
  assert.equal(t.truncated, true);
  assert.deepEqual(t.value.promptIds, [BOS, ...toyIds('def')]);
  assert.deepEqual(t.value.chosenIds, toyIds('xyz')); // 3 left of 7: EOS cut off, as TRL cuts
  assert.deepEqual(t.value.rejectedIds, [...toyIds('q'), EOS]);
  const s = tokenizePreference(tok, row, { maxPromptLength: 4, truncationMode: 'keep_start' })!;
  assert.deepEqual(s.value.promptIds, [BOS, ...toyIds('abc')]);
  assert.deepEqual(s.value.chosenIds, [...toyIds('xyz'), EOS]);
  const c = tokenizePreference(tok, row, { maxCompletionLength: 2 })!;
  assert.deepEqual(c.value.chosenIds, toyIds('xy'));
  assert.deepEqual(c.value.rejectedIds, [...toyIds('q'), EOS]);
  const fits = tokenizePreference(tok, row, { maxLength: 11 })!;
  assert.equal(fits.truncated, false);
  // A prompt that fills maxLength by itself leaves nothing to score: dropped.
  assert.equal(tokenizePreference(tok, row, { maxLength: 7 }), null);
  assert.equal(tokenizePreference(tok, row, { maxLength: 6 }), null);
});

test('report: rows, truncated, dropped, skippedInvalid', () => {
  const tok = toyTokenizer();
  const rows = [
    { prompt: 'ab', chosen: 'c', rejected: 'd' }, // fits
    { prompt: 'ab', chosen: 'cccccc', rejected: 'd' }, // chosen truncated
    { prompt: 'abcdefgh', chosen: 'c', rejected: 'd' }, // prompt fills maxLength: dropped
    { prompt: 'ab', chosen: 'c', rejected: 'c' }, // invalid: identical
    { prompt: 'ab', chosen: 'c' }, // invalid: rejected missing
  ];
  const { examples, report } = preparePreferenceDataset(rows, tok, { maxLength: 6, skipInvalid: true });
  assert.deepEqual(
    {
      read: report.read,
      rows: report.rows,
      truncated: report.truncated,
      dropped: report.dropped,
      skippedInvalid: report.skippedInvalid,
    },
    { read: 5, rows: 2, truncated: 1, dropped: 1, skippedInvalid: 2 },
  );
  assert.deepEqual(examples[1].chosenIds, toyIds('cccc'));
  assert.match(report.invalid[0], /<memory> row index 3: field 'chosen': is identical to 'rejected'/);
  assert.throws(() => preparePreferenceDataset(rows, tok, { maxLength: 0 }), /maxLength is 0/);
  assert.throws(() => preparePreferenceDataset(rows, toyTokenizer({ eos: false })), /has no EOS token/);
});
