// GPT-2's tokenizer as a standard Hugging Face tokenizer.json, built from OpenAI's original files
// (encoder.json: byte-level token -> id; vocab.bpe: the merges, one "a b" pair a line, ranked by order).
// Byte-level BPE: ByteLevel pre-tokenizer (GPT-2 regex, no prefix space), BPE model, ByteLevel decoder,
// <|endoftext|> (id 50256) as the one special token, which is BOS, EOS and UNK; no BOS is added on encode.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Json } from './special.js';

export const GPT2_EOT = '<|endoftext|>';

/** tokenizer.json object from encoder.json (parsed) and vocab.bpe (text). */
export function gpt2TokenizerJson(encoder: Record<string, number>, vocabBpe: string): Json {
  const eot = encoder[GPT2_EOT];
  if (typeof eot !== 'number') {
    throw new Error(`gpt2TokenizerJson: encoder.json has no '${GPT2_EOT}' entry (is it GPT-2's encoder.json?)`);
  }
  const merges: Array<[string, string]> = [];
  for (const [i, raw] of vocabBpe.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (line === '' || (i === 0 && line.startsWith('#version'))) continue;
    const parts = line.split(' ');
    if (parts.length !== 2)
      throw new Error(`gpt2TokenizerJson: vocab.bpe line ${i + 1} is not a pair: ${JSON.stringify(line)}`);
    merges.push([parts[0], parts[1]]);
  }
  const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean) => ({
    type: 'ByteLevel',
    add_prefix_space: addPrefixSpace,
    trim_offsets: trimOffsets,
    use_regex: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: eot,
        content: GPT2_EOT,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel(false, true),
    post_processor: byteLevel(true, false),
    decoder: byteLevel(true, true),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: encoder,
      merges,
    },
  };
}

/** tokenizer_config.json of GPT-2 (GPT2Tokenizer's defaults made explicit). */
export function gpt2TokenizerConfig(): Json {
  return {
    tokenizer_class: 'GPT2Tokenizer',
    bos_token: GPT2_EOT,
    eos_token: GPT2_EOT,
    unk_token: GPT2_EOT,
    add_prefix_space: false,
    model_max_length: 1024,
    clean_up_tokenization_spaces: false,
  };
}

/** Write tokenizer.json + tokenizer_config.json for GPT-2 into outDir, from encoder.json and vocab.bpe paths. */
export function writeGpt2TokenizerFolder(outDir: string, encoderJsonPath: string, vocabBpePath: string): void {
  const encoder = JSON.parse(readFileSync(encoderJsonPath, 'utf8')) as Record<string, number>;
  const tj = gpt2TokenizerJson(encoder, readFileSync(vocabBpePath, 'utf8'));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'tokenizer.json'), JSON.stringify(tj));
  writeFileSync(join(outDir, 'tokenizer_config.json'), JSON.stringify(gpt2TokenizerConfig(), null, 2));
}
