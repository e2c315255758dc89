// SFTConfig checks and notices, eos_token, and how packed rows become model rows (no engine needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMON_OPTIONS, defaultsOf, SFT_OPTIONS, type SftConfig } from '../../src/train/config.js';
import { lossTokens, paddingFree, sequenceRows, sftNotices, withEosToken } from '../../src/train/sft.js';
import { withChatTemplate } from '../../src/train/sft-files.js';
import { toyId, toyTokenizer } from '../helpers/assets.js';

const cfg = (o: Partial<SftConfig> = {}): SftConfig => ({ ...defaultsOf({ ...COMMON_OPTIONS, ...SFT_OPTIONS }), ...o });

test('sftNotices: the combinations TRL 1.13 rejects are errors; options with no effect here get one line each', () => {
  assert.deepEqual(sftNotices(cfg()), []);
  assert.throws(() => sftNotices(cfg({ padding_free: true })), /padding_free without packing .* max_length 0/);
  assert.doesNotThrow(() => sftNotices(cfg({ padding_free: true, max_length: 0 })));
  assert.throws(() => sftNotices(cfg({ packing: true, max_length: 0 })), /packing needs max_length > 0/);
  const notes = sftNotices(cfg({ activation_offloading: true, dataset_num_proc: 4, pad_token: '</s>' }));
  assert.equal(notes.length, 3);
  assert.ok(notes.every((n) => n.startsWith('notice: ')));
  // bfd packing turns padding_free on (TRL 1.13); wrapped does not.
  assert.deepEqual(
    [paddingFree(cfg({ packing: true })), paddingFree(cfg({ packing: true, packing_strategy: 'wrapped' }))],
    [true, false],
  );
});

test('withEosToken: the EOS id and the chat template eos_token follow eos_token; unknown tokens are errors', () => {
  const tok = toyTokenizer({ template: '{{ messages[0].content }}{{ eos_token }}' });
  const t = withEosToken(tok, '.');
  assert.deepEqual([t.eosToken, t.eosId], ['.', toyId('.')]);
  assert.equal(t.applyChatTemplate([{ role: 'user', content: 'hi' }]), 'hi.');
  assert.equal(withEosToken(tok, ''), tok);
  assert.throws(() => withEosToken(tok, '<nope>'), /eos_token '<nope>' is not in the vocabulary/);
});

test('packed rows: each sequence becomes its own model row; its first token is never a target', () => {
  // One packed row [a b c | d e] with labels on c, d, e: targets are c (from b) and e (from d); d starts a sequence.
  const row = { ids: [10, 11, 12, 13, 14], promptLength: 0, labels: [0, 0, 1, 1, 1], seqLengths: [3, 2] };
  const b = sequenceRows([row], 0);
  assert.deepEqual([b.R, b.T], [2, 3]);
  assert.deepEqual(Array.from(b.ids), [10, 11, 12, 13, 14, 0]);
  assert.deepEqual(Array.from(b.mask), [1, 1, 1, 1, 1, 0]);
  assert.deepEqual(
    [Array.from(b.picks), Array.from(b.targets)],
    [
      [1, 3],
      [12, 14],
    ],
  );
  assert.equal(lossTokens(row), 2);
  // Unpacked (wrapped) the same tokens are one sequence: d is a target too.
  assert.equal(lossTokens({ ...row, seqLengths: undefined }), 3);
});

test('withChatTemplate: a .jinja file replaces the chat template; other paths are errors naming the path', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'tsdpo-tpl-'));
  writeFileSync(
    join(dir, 't.jinja'),
    '{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{{ eos_token }}',
  );
  const tok = withChatTemplate(toyTokenizer(), join(dir, 't.jinja'));
  assert.equal(tok.hasChatTemplate, true);
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), `[user]hi${toyTokenizer().eosToken}`);
  assert.throws(() => withChatTemplate(toyTokenizer(), dir), /expected a \.jinja or \.j2 template file/);
});
