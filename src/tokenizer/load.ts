// loadTokenizer(dir): the tokenizer of a local Hugging Face model folder (tokenizer.json and friends).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gpt2TokenizerJson } from './gpt2.js';
import { createTokenizer, type TokenizerFiles } from './hf.js';
import type { Json } from './special.js';
import type { TextTokenizer } from './types.js';

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`loadTokenizer: cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new Error(`loadTokenizer: ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

const optionalJson = (path: string): Json | null => (existsSync(path) ? readJson(path) : null);

/** Read every tokenizer-related file of a model folder (no tokenizer built yet). */
export function readTokenizerFiles(dir: string): TokenizerFiles {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`loadTokenizer: ${dir} is not a folder (give the model folder holding tokenizer.json)`);
  }
  const at = (f: string) => join(dir, f);
  const tokenizerConfig = optionalJson(at('tokenizer_config.json'));
  let tokenizerJson: Json;
  if (existsSync(at('tokenizer.json'))) {
    tokenizerJson = readJson(at('tokenizer.json'));
  } else if (
    existsSync(at('vocab.json')) &&
    existsSync(at('merges.txt')) &&
    /^GPT2Tokenizer(Fast)?$/.test(String(tokenizerConfig?.tokenizer_class ?? 'GPT2Tokenizer'))
  ) {
    // An old GPT-2 folder (vocab.json + merges.txt only): the same byte-level BPE tokenizer.json HF builds.
    tokenizerJson = gpt2TokenizerJson(
      readJson(at('vocab.json')) as Record<string, number>,
      readFileSync(at('merges.txt'), 'utf8'),
    );
  } else {
    const found = readdirSync(dir).sort();
    throw new Error(
      `loadTokenizer: no tokenizer.json in ${dir} (found: ${found.join(', ') || 'nothing'}). ` +
        `tsdpo reads Hugging Face fast tokenizers; for a folder with only tokenizer.model or vocab files, ` +
        `load it once with transformers' AutoTokenizer and save_pretrained to write tokenizer.json`,
    );
  }
  let chatTemplateFile: string | null = null;
  if (existsSync(at('chat_template.jinja'))) chatTemplateFile = readFileSync(at('chat_template.jinja'), 'utf8');
  else if (existsSync(at('chat_template.json'))) {
    const t = readJson(at('chat_template.json')).chat_template;
    if (typeof t === 'string') chatTemplateFile = t;
  }
  const namedChatTemplates: Record<string, string> = {};
  const extra = at('additional_chat_templates');
  if (existsSync(extra) && statSync(extra).isDirectory()) {
    for (const f of readdirSync(extra).sort()) {
      if (f.endsWith('.jinja')) namedChatTemplates[f.slice(0, -'.jinja'.length)] = readFileSync(join(extra, f), 'utf8');
    }
  }
  return {
    tokenizerJson,
    tokenizerConfig,
    specialTokensMap: optionalJson(at('special_tokens_map.json')),
    generationConfig: optionalJson(at('generation_config.json')),
    modelConfig: optionalJson(at('config.json')),
    chatTemplateFile,
    namedChatTemplates,
    source: dir,
  };
}

/**
 * The tokenizer of a local Hugging Face model folder (tokenizer.json, or vocab.json + merges.txt of an old GPT-2
 * folder).
 */
export function loadTokenizer(dir: string): TextTokenizer {
  return createTokenizer(readTokenizerFiles(dir));
}
