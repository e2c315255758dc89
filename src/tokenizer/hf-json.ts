// Hugging Face `tokenizer.json` / `tokenizer_config.json` for a byte-level BPE, laid out as GPT-2's:
// no normalizer, ByteLevel pre-tokenizer / post-processor / decoder, a BPE model with `vocab` and
// `merges` ("a b" strings), and <|endoftext|> as the one added special token (bos = eos = pad = unk).
import { BpeModel } from './bpe-train.js';

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The part of tokenizer.json this project writes and reads. */
export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  post_processor: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: string;
    end_of_word_suffix: string;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: string[];
  };
}

export function toTokenizerJson(model: BpeModel): TokenizerJson {
  const special = new Set(model.specialTokens.map((t) => t.id));
  const vocab: Record<string, number> = {};
  model.vocab.forEach((t, id) => {
    if (!special.has(id)) vocab[t] = id;
  });
  for (const t of model.specialTokens) vocab[t.content] = t.id; // GPT-2 lists it in the vocab too
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: model.specialTokens.map(({ id, content }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: model.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

export interface TokenizerConfigOptions {
  modelMaxLength: number; // longest sequence the model takes (its n_positions)
}

/** tokenizer_config.json: GPT-2's, with clean-up of spaces off so that decode(encode(s)) === s. */
export function toTokenizerConfig(model: BpeModel, opts: TokenizerConfigOptions): Record<string, unknown> {
  const eos = model.specialTokens[0];
  if (eos === undefined) throw new Error('toTokenizerConfig: the model has no special token to use as <|endoftext|>');
  const decoder: Record<string, unknown> = {};
  for (const t of model.specialTokens) {
    decoder[String(t.id)] = {
      content: t.content,
      lstrip: false,
      normalized: true,
      rstrip: false,
      single_word: false,
      special: true,
    };
  }
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    bos_token: eos.content,
    clean_up_tokenization_spaces: false,
    eos_token: eos.content,
    errors: 'replace',
    model_max_length: opts.modelMaxLength,
    pad_token: eos.content,
    tokenizer_class: 'GPT2Tokenizer',
    unk_token: eos.content,
  };
}

/** Reads back a byte-level BPE tokenizer.json (as written above, or GPT-2's own). */
export function fromTokenizerJson(json: unknown, file = 'tokenizer.json'): BpeModel {
  const j = json as Partial<TokenizerJson>;
  if (j?.model?.type !== 'BPE')
    throw new Error(`fromTokenizerJson: ${file}: model.type is ${JSON.stringify(j?.model?.type)}, expected "BPE"`);
  if (j.pre_tokenizer?.type !== 'ByteLevel') {
    throw new Error(
      `fromTokenizerJson: ${file}: pre_tokenizer.type is ` +
        `${JSON.stringify(j.pre_tokenizer?.type)}, expected "ByteLevel"`,
    );
  }
  const vocab: string[] = [];
  for (const [t, id] of Object.entries(j.model.vocab ?? {})) {
    if (!Number.isInteger(id) || id < 0)
      throw new Error(`fromTokenizerJson: ${file}: model.vocab["${t}"] = ${id} is not an id`);
    vocab[id] = t;
  }
  const specialTokens = (j.added_tokens ?? []).map(({ id, content }) => ({ id, content }));
  for (const t of specialTokens) vocab[t.id] = t.content;
  for (let i = 0; i < vocab.length; i++) {
    if (vocab[i] === undefined)
      throw new Error(`fromTokenizerJson: ${file}: no token has id ${i} (ids must be 0..${vocab.length - 1})`);
  }
  const merges = (j.model.merges ?? []).map((m: string | string[], i: number): [string, string] => {
    const pair = Array.isArray(m) ? m : m.split(' ');
    if (pair.length !== 2)
      throw new Error(`fromTokenizerJson: ${file}: model.merges[${i}] = ${JSON.stringify(m)} is not a pair`);
    return [pair[0]!, pair[1]!];
  });
  return { vocab, merges, specialTokens };
}
