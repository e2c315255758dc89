// A tiny GPT-2 with the demo tokenizer and a tiny preference dataset, written to a temp folder,
// for end-to-end training tests.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initModel } from '../../src/models/init.js';
import { saveModel } from '../../src/models/load.js';

const DEMO = fileURLToPath(new URL('../../../test/fixtures/demo/', import.meta.url));

export async function tinyModel(root: string, seed = 0): Promise<string> {
  const dir = join(root, 'model');
  const config = {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: 2048,
    n_positions: 64,
    n_embd: 32,
    n_layer: 2,
    n_head: 2,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    bos_token_id: 2047,
    eos_token_id: 2047,
    tie_word_embeddings: true,
  };
  await saveModel(initModel(config, seed), dir);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEMO, f), join(dir, f));
  return dir;
}

/** Pairs whose chosen completion is always positive and rejected always negative. */
export function tinyPreferences(root: string, n = 24): string {
  const subjects = [
    'The movie',
    'This film',
    'The plot',
    'The acting',
    'The ending',
    'The story',
    'The cast',
    'The score',
  ];
  const rows = Array.from({ length: n }, (_, i) => ({
    prompt: `${subjects[i % subjects.length]} was`,
    chosen: i % 2 ? ' great and fun.' : ' wonderful and moving.',
    rejected: i % 2 ? ' dull and bad.' : ' awful and boring.',
  }));
  const file = join(root, 'prefs.jsonl');
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

export function tempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'tsdpo-e2e-'));
}
