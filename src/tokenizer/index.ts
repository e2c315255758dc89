// Tokenizers: Hugging Face tokenizer.json + tokenizer_config.json + chat templates, and GPT-2 from its original files.
export type { ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions, TextTokenizer } from './types.js';
export { createTokenizer, type TokenizerFiles } from './hf.js';
export { loadTokenizer, readTokenizerFiles } from './load.js';
export { gpt2TokenizerConfig, gpt2TokenizerJson, writeGpt2TokenizerFolder, GPT2_EOT } from './gpt2.js';
