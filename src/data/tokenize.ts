// Token ids of a (prompt, completion...) example, by the rules of TRL's DPO tokenize_row and the original
// DPO code: prompt and each completion are encoded separately without special tokens (no BPE merge across
// the boundary); BOS once at the start of the prompt when the tokenizer adds BOS (kept if the chat
// template already rendered it, never doubled); EOS closes each completion.
// Truncation: the prompt first, to maxPromptLength (keep_end keeps its end, and its BOS), then each
// completion to maxCompletionLength and to what maxLength leaves; a prompt that alone fills maxLength
// leaves no room for a completion, so the example is dropped instead.
import type { TextTokenizer } from '../tokenizer/types.js';

export interface TruncationOptions {
  /** Longest prompt + completion in tokens (EOS and BOS included); null = no limit. */
  maxLength?: number | null;
  /** Longest prompt in tokens; null = no limit. */
  maxPromptLength?: number | null;
  /** Longest completion in tokens (EOS included); null = no limit. */
  maxCompletionLength?: number | null;
  /** Which end of a too-long prompt to keep: keep_end (default, TRL's) keeps the end, next to the completion. */
  truncationMode?: 'keep_end' | 'keep_start';
}

export interface TokenizedPair {
  promptIds: number[];
  /** Chosen completion ids, EOS last (unless truncated away). */
  chosenIds: number[];
  rejectedIds: number[];
}

/** Prompt ids: BOS prepended when the tokenizer adds BOS and the text did not already start with it. */
export function encodePrompt(tok: TextTokenizer, text: string): number[] {
  const ids = tok.encode(text, { addSpecialTokens: false });
  if (tok.addsBos && tok.bosId !== null && ids[0] !== tok.bosId) ids.unshift(tok.bosId);
  return ids;
}

/**
 * Completion ids with EOS appended, as TRL 1.13 appends the EOS token to a text completion that does
 * not already end with it. eos false: none (conversational rows, whose chat template closes the turn).
 */
export function encodeCompletion(tok: TextTokenizer, text: string, eos = true): number[] {
  if (!eos) return tok.encode(text, { addSpecialTokens: false });
  if (tok.eosId === null) {
    throw new Error(
      `encodeCompletion: the tokenizer of ${tok.source} has no EOS token (eos_token in ` +
        `tokenizer_config.json, or eos_token_id in generation_config.json / config.json)`,
    );
  }
  const ids = tok.encode(text, { addSpecialTokens: false });
  if (ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
  return ids;
}

/** A prompt cut to `max` tokens; keep_end keeps a leading BOS in place. */
export function truncatePrompt(
  ids: number[],
  max: number,
  mode: 'keep_end' | 'keep_start',
  bosId: number | null,
): number[] {
  if (ids.length <= max) return ids;
  if (mode === 'keep_start') return ids.slice(0, max);
  if (bosId !== null && ids[0] === bosId && max >= 1) return [bosId, ...ids.slice(ids.length - (max - 1))];
  return ids.slice(ids.length - max);
}

export interface Truncated<T> {
  value: T;
  truncated: boolean;
}

/** Apply the truncation rules to a prompt and its completions; null when the prompt leaves no room. */
export function truncateExample(
  prompt: number[],
  completions: number[][],
  opts: TruncationOptions,
  bosId: number | null,
): Truncated<{ prompt: number[]; completions: number[][] }> | null {
  const mode = opts.truncationMode ?? 'keep_end';
  let truncated = false;
  let p = prompt;
  if (opts.maxPromptLength != null && p.length > opts.maxPromptLength) {
    p = truncatePrompt(p, opts.maxPromptLength, mode, bosId);
    truncated = true;
  }
  let room = Infinity;
  if (opts.maxCompletionLength != null) room = opts.maxCompletionLength;
  if (opts.maxLength != null) {
    if (p.length >= opts.maxLength) return null;
    room = Math.min(room, opts.maxLength - p.length);
  }
  const cut = completions.map((c) => {
    if (c.length <= room) return c;
    truncated = true;
    return c.slice(0, room);
  });
  return { value: { prompt: p, completions: cut }, truncated };
}

/**
 * Tokenize one preference example; null when dropped (prompt fills maxLength). eos false: no EOS
 * after the completions (conversational rows, as TRL 1.13).
 */
export function tokenizePreference(
  tok: TextTokenizer,
  text: { prompt: string; chosen: string; rejected: string },
  opts: TruncationOptions & { eos?: boolean } = {},
): Truncated<TokenizedPair> | null {
  const eos = opts.eos ?? true;
  const t = truncateExample(
    encodePrompt(tok, text.prompt),
    [encodeCompletion(tok, text.chosen, eos), encodeCompletion(tok, text.rejected, eos)],
    opts,
    tok.bosId,
  );
  if (t === null) return null;
  const [chosenIds, rejectedIds] = t.value.completions;
  return { value: { promptIds: t.value.prompt, chosenIds, rejectedIds }, truncated: t.truncated };
}
