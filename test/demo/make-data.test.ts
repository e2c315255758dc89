// The data folder for `tsdpo pretrain`: corpus lines, a tokenizer Hugging Face loads, a manifest.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { writeDemoData } from '../../src/demo/make-data.js';

test('writeDemoData: writes corpus lines, tokenizer files and a manifest that agree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsdpo-demo-data-'));
  try {
    const data = writeDemoData(dir, {
      corpus: { books: ['carroll-alice'], sotuFromYear: null, reviewRepeat: 2 },
      tokenizer: { vocabSize: 700 },
      modelMaxLength: 128,
    });
    const lines = (f: string) => readFileSync(join(dir, f), 'utf8').split('\n').slice(0, -1);
    assert.deepEqual(
      lines('train.txt'),
      data.corpus.train.map((d) => d.text),
    );
    assert.deepEqual(
      lines('heldout.txt'),
      data.corpus.heldOut.map((d) => d.text),
    );
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.eos_token, '<|endoftext|>');
    assert.equal(config.pad_token, '<|endoftext|>');
    assert.equal(config.model_max_length, 128);
    assert.equal(config.clean_up_tokenization_spaces, false);
    const hf = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), config);
    assert.equal(hf.token_to_id('<|endoftext|>'), 699);
    const text = data.corpus.heldOut[0]!.text;
    assert.equal(hf.decode(hf.encode(text).ids), text);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.tokenizer.vocabSize, 700);
    assert.equal(manifest.corpus.trainDocs, data.corpus.train.length);
    assert.deepEqual(
      manifest.corpus.sources.map((s: { id: string }) => s.id),
      ['reviews/imdb', 'reviews/amazon', 'reviews/yelp', 'gutenberg/carroll-alice'],
    );
    assert.ok(data.bytesPerToken.review! > 2 && data.bytesPerToken.prose! > 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
