// The tokenizer interface the rest of tsdpo sees: text <-> ids, special-token ids, chat templates.
// Engine-independent: plain number arrays in and out.

/** One chat turn, as in Hugging Face chat datasets ({role, content}); extra keys pass to the template. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface EncodeOptions {
  /**
   * Let the tokenizer add its own special tokens (BOS/EOS per its post-processor). Default true, as in transformers.
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, chat markers flagged special) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Append the header that opens an assistant turn (template variable add_generation_prompt). */
  addGenerationPrompt?: boolean;
  /** Leave the last message open so the text continues it (transformers' continue_final_message). */
  continueFinalMessage?: boolean;
  /** Pick a named template when the tokenizer has several (default: the one named "default"). */
  templateName?: string;
  /** Extra template variables (e.g. enable_thinking for Qwen3). */
  variables?: Record<string, unknown>;
  /**
   * Keep the bounds of {% generation %} blocks in the text as GENERATION_START / GENERATION_END
   * (src/tokenizer/chat-template.ts; splitGenerationMarkers removes them and gives the spans).
   */
  markGeneration?: boolean;
}

/** A Hugging Face tokenizer: encode / decode, special tokens and the chat template, as transformers applies them. */
export interface TextTokenizer {
  /** Token ids of `text` (special tokens added by default, as transformers' encode). */
  encode(text: string, opts?: EncodeOptions): number[];
  /** The text of `ids`. */
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  /** Id of a token string, or null if it is not in the vocabulary. */
  tokenToId(token: string): number | null;
  /** The vocabulary entry of `id`, or null outside the vocabulary. */
  idToToken(id: number): string | null;
  bosToken: string | null;
  eosToken: string | null;
  padToken: string | null;
  bosId: number | null;
  /** The tokenizer's EOS id (what a completion is closed with); null if it has none. */
  eosId: number | null;
  /** Every id that ends generation: eosId plus generation_config.json / config.json eos_token_id (may be a list). */
  eosIds: number[];
  padId: number | null;
  /** Number of ids the tokenizer can produce (largest id + 1, added tokens included). */
  vocabSize: number;
  /** Whether encode(text, {addSpecialTokens: true}) puts BOS first (the tokenizer's own BOS rule). */
  addsBos: boolean;
  /** Whether encode(text, {addSpecialTokens: true}) puts EOS last. */
  addsEos: boolean;
  /** Names of the chat templates it has ("default" for a single one); empty if none. */
  chatTemplateNames: string[];
  hasChatTemplate: boolean;
  /** `messages` rendered with the chat template (the text, not yet tokenized). */
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): string;
  /** Where it was loaded from (for error messages). */
  source: string;
  /** Oddities found while loading (a special token missing from the vocabulary, ...). */
  warnings: string[];
}
