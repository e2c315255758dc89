// Writes the demo's data folder: the corpus (one document per line), a byte-level BPE tokenizer
// trained on it as Hugging Face tokenizer.json + tokenizer_config.json, and a manifest with the
// sources, their licences and sizes. `tsdpo pretrain` starts from this; scripts/make-demo-data.mjs
// runs it from the command line.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Corpus, CorpusOptions, Doc, buildCorpus } from './corpus.js';
import { BpeModel, BpeTrainOptions, DEFAULT_BPE_TRAIN, trainBpe } from '../tokenizer/bpe-train.js';
import { ByteLevelBpe } from '../tokenizer/bpe.js';
import { toTokenizerConfig, toTokenizerJson } from '../tokenizer/hf-json.js';

export interface DemoDataOptions {
  corpus: Partial<CorpusOptions>; // see DEFAULT_CORPUS
  tokenizer: Partial<BpeTrainOptions>; // see DEFAULT_BPE_TRAIN (vocab 2048, <|endoftext|> last)
  modelMaxLength: number; // tokenizer_config.json's model_max_length
}

export const DEFAULT_DEMO_DATA: DemoDataOptions = { corpus: {}, tokenizer: {}, modelMaxLength: 256 };

export interface DemoData {
  corpus: Corpus;
  bpe: BpeModel;
  bytesPerToken: Record<string, number>; // UTF-8 bytes per token on held-out text, by source kind
}

/** UTF-8 bytes per token of `docs` under `enc` (the tokenizer's compression). */
export function bytesPerToken(enc: ByteLevelBpe, docs: readonly Doc[]): number {
  let bytes = 0,
    tokens = 0;
  for (const d of docs) {
    bytes += Buffer.byteLength(d.text, 'utf8');
    tokens += enc.encode(d.text).length;
  }
  return tokens === 0 ? NaN : bytes / tokens;
}

/** Builds the corpus and trains the tokenizer on its training split (in memory). */
export function makeDemoData(options: Partial<DemoDataOptions> = {}): DemoData {
  const o = { ...DEFAULT_DEMO_DATA, ...options };
  const corpus = buildCorpus(o.corpus);
  const bpe = trainBpe(
    corpus.train.map((d) => d.text),
    { ...DEFAULT_BPE_TRAIN, ...o.tokenizer },
  );
  const enc = new ByteLevelBpe(bpe);
  const kindOf = new Map(corpus.sources.map((s) => [s.id, s.kind]));
  return {
    corpus,
    bpe,
    bytesPerToken: {
      review: bytesPerToken(
        enc,
        corpus.heldOut.filter((d) => kindOf.get(d.source) === 'review'),
      ),
      prose: bytesPerToken(
        enc,
        corpus.heldOut.filter((d) => kindOf.get(d.source) === 'prose'),
      ),
    },
  };
}

const lines = (docs: readonly Doc[]) => docs.map((d) => `${d.text}\n`).join('');

/**
 * Writes into `dir`: train.txt and heldout.txt (one document per line), tokenizer.json,
 * tokenizer_config.json and manifest.json. Returns what it wrote about.
 */
export function writeDemoData(dir: string, options: Partial<DemoDataOptions> = {}): DemoData {
  const o = { ...DEFAULT_DEMO_DATA, ...options };
  const data = makeDemoData(o);
  const { corpus, bpe } = data;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.txt'), lines(corpus.train));
  writeFileSync(join(dir, 'heldout.txt'), lines(corpus.heldOut));
  writeFileSync(join(dir, 'tokenizer.json'), `${JSON.stringify(toTokenizerJson(bpe), null, 2)}\n`);
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    `${JSON.stringify(toTokenizerConfig(bpe, { modelMaxLength: o.modelMaxLength }), null, 2)}\n`,
  );
  const manifest = {
    corpus: {
      options: corpus.options,
      trainDocs: corpus.train.length,
      trainChars: corpus.train.reduce((n, d) => n + d.text.length, 0),
      heldOutDocs: corpus.heldOut.length,
      heldOutChars: corpus.heldOut.reduce((n, d) => n + d.text.length, 0),
      sources: corpus.sources,
    },
    tokenizer: {
      vocabSize: bpe.vocab.length,
      merges: bpe.merges.length,
      specialTokens: bpe.specialTokens,
      bytesPerTokenHeldOut: data.bytesPerToken,
    },
  };
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return data;
}
