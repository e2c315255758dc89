// Preference rows -> (prompt, chosen, rejected) text, in the formats TRL's DPO trainer accepts, detected
// once per dataset from its first row:
//   standard        {prompt, chosen, rejected} strings
//   conversational  the same as lists of {role, content}, rendered with the chat template (TRL rules)
//   implicit prompt {chosen, rejected} only: the prompt is their shared prefix (TRL's extract_prompt),
//                   for strings and for conversations
//   Anthropic HH    {chosen, rejected} strings "\n\nHuman: ...\n\nAssistant: ...": the prompt runs up to
//                   and including the last "\n\nAssistant:" (as the original DPO code cuts HH)
import type { ChatMessage, TextTokenizer } from '../tokenizer/types.js';
import { DataError, typeName, type Where } from './errors.js';
import {
  looksConversational,
  messagesField,
  renderCompletion,
  renderPrompt,
  requireTemplate,
  sameJson,
  textField,
} from './messages.js';

export interface PreferenceColumns {
  /** Column holding the prompt (default "prompt"); absent in a row's data means an implicit prompt. */
  prompt?: string;
  chosen?: string;
  rejected?: string;
}

/** How a dataset's prompt is found: an explicit column, the shared prefix, or the HH "Assistant:" cut. */
export type PromptStyle = 'explicit' | 'implicit' | 'hh';

export interface PreferenceFormat {
  conversational: boolean;
  prompt: PromptStyle;
}

/** auto: detect; 'hh' / 'implicit' force how a prompt-less string dataset is split. */
export type PromptStyleOption = 'auto' | 'hh' | 'implicit';

export interface PreferenceText {
  prompt: string;
  chosen: string;
  rejected: string;
}

const HH_HUMAN = '\n\nHuman:';
const HH_ASSISTANT = '\n\nAssistant:';

function columnsOf(c: PreferenceColumns = {}) {
  return { prompt: c.prompt ?? 'prompt', chosen: c.chosen ?? 'chosen', rejected: c.rejected ?? 'rejected' };
}

export function asRow(value: unknown, where: Where): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new DataError(where, null, `is ${typeName(value)}; expected an object (one row)`);
  }
  return value as Record<string, unknown>;
}

/** The dataset format, read off its first row (as TRL does with next(iter(dataset))). */
export function detectPreferenceFormat(
  row: Record<string, unknown>,
  where: Where,
  columns: PreferenceColumns = {},
  style: PromptStyleOption = 'auto',
): PreferenceFormat {
  const col = columnsOf(columns);
  for (const f of [col.chosen, col.rejected]) {
    if (row[f] === undefined || row[f] === null) {
      throw new DataError(
        where,
        f,
        `is missing (the row has ${Object.keys(row).join(', ') || 'no fields'}; ` +
          `map columns with the prompt/chosen/rejected column options)`,
      );
    }
  }
  const conversational = looksConversational(row[col.chosen]);
  const hasPrompt = row[col.prompt] !== undefined && row[col.prompt] !== null;
  if (columns.prompt !== undefined && !hasPrompt) throw new DataError(where, col.prompt, 'is missing');
  if (hasPrompt) {
    const promptConv = looksConversational(row[col.prompt]);
    if (promptConv === conversational) return { conversational, prompt: 'explicit' };
    if (promptConv) {
      throw new DataError(
        where,
        col.prompt,
        `is a list of messages but '${col.chosen}' is ${typeName(row[col.chosen])}; ` +
          `prompt and completions must both be text or both be messages`,
      );
    }
    // A text prompt beside conversational completions that repeat it: TRL extracts the prompt.
    return { conversational, prompt: 'implicit' };
  }
  if (conversational || style === 'implicit') return { conversational, prompt: 'implicit' };
  const chosen = row[col.chosen];
  const isHH = typeof chosen === 'string' && chosen.includes(HH_ASSISTANT) && chosen.includes(HH_HUMAN);
  if (style === 'hh' && !isHH) {
    throw new DataError(
      where,
      col.chosen,
      `does not look like Anthropic HH text ("\\n\\nHuman: ... \\n\\nAssistant: ...")`,
    );
  }
  return { conversational, prompt: isHH ? 'hh' : 'implicit' };
}

/**
 * TRL's extract_prompt: the first index where chosen and rejected differ; a space just before it goes to
 * the completions. When one is a prefix of the other, Python's loop leaves the index at the last shared
 * position, so both completions keep at least one element; that is kept here.
 */
export function sharedPrefixLength<T>(
  c: readonly T[],
  r: readonly T[],
  eq: (a: T, b: T) => boolean,
  isSpace: (x: T) => boolean,
): number {
  const n = Math.min(c.length, r.length);
  for (let i = 0; i < n; i++) {
    if (!eq(c[i], r[i])) return i > 0 && isSpace(c[i - 1]) ? i - 1 : i;
  }
  return n - 1;
}

function hhSplit(text: string, where: Where, field: string): [string, string] {
  const at = text.lastIndexOf(HH_ASSISTANT);
  if (at < 0) throw new DataError(where, field, `has no "\\n\\nAssistant:" turn (Anthropic HH format)`);
  const end = at + HH_ASSISTANT.length;
  return [text.slice(0, end), text.slice(end)];
}

/** One row -> rendered (prompt, chosen, rejected) text; DataError naming the field on bad input. */
export function preferenceText(
  value: unknown,
  fmt: PreferenceFormat,
  tok: TextTokenizer | null,
  where: Where,
  columns: PreferenceColumns = {},
): PreferenceText {
  const col = columnsOf(columns);
  const row = asRow(value, where);
  if (!fmt.conversational) {
    const chosen = textField(row, col.chosen, where);
    const rejected = textField(row, col.rejected, where);
    if (chosen === rejected) throw new DataError(where, col.chosen, `is identical to '${col.rejected}'`);
    if (fmt.prompt === 'explicit') return { prompt: textField(row, col.prompt, where), chosen, rejected };
    if (fmt.prompt === 'hh') {
      const [prompt, c] = hhSplit(chosen, where, col.chosen);
      if (!rejected.startsWith(prompt)) {
        throw new DataError(
          where,
          col.rejected,
          `does not start with the same dialogue as '${col.chosen}' ` +
            `(up to its last "\\n\\nAssistant:"), so the HH prompt is ambiguous`,
        );
      }
      const r = rejected.slice(prompt.length);
      if (c.length === 0) throw new DataError(where, col.chosen, 'has an empty last Assistant turn');
      if (r.length === 0) throw new DataError(where, col.rejected, 'has an empty last Assistant turn');
      return { prompt, chosen: c, rejected: r };
    }
    const cc = Array.from(chosen),
      rr = Array.from(rejected); // code points, as Python indexes strings
    const k = sharedPrefixLength(
      cc,
      rr,
      (a, b) => a === b,
      (x) => x === ' ',
    );
    return { prompt: cc.slice(0, k).join(''), chosen: cc.slice(k).join(''), rejected: rr.slice(k).join('') };
  }

  const chosenMsgs = messagesField(row, col.chosen, where);
  const rejectedMsgs = messagesField(row, col.rejected, where);
  if (sameJson(chosenMsgs, rejectedMsgs)) throw new DataError(where, col.chosen, `is identical to '${col.rejected}'`);
  let prompt: ChatMessage[], chosen: ChatMessage[], rejected: ChatMessage[];
  if (fmt.prompt === 'explicit') {
    prompt = messagesField(row, col.prompt, where);
    chosen = chosenMsgs;
    rejected = rejectedMsgs;
  } else {
    const k = sharedPrefixLength(chosenMsgs, rejectedMsgs, sameJson, () => false);
    if (k === 0) {
      throw new DataError(
        where,
        col.chosen,
        `shares no leading message with '${col.rejected}', so no prompt ` + `can be extracted (give a prompt column)`,
      );
    }
    prompt = chosenMsgs.slice(0, k);
    chosen = chosenMsgs.slice(k);
    rejected = rejectedMsgs.slice(k);
  }
  if (tok === null) throw new Error('preferenceText: conversational data needs a tokenizer with a chat template');
  requireTemplate(tok, where);
  const promptText = renderPrompt(tok, prompt, where, fmt.prompt === 'explicit' ? col.prompt : col.chosen);
  return {
    prompt: promptText,
    chosen: renderCompletion(tok, prompt, promptText, chosen, where, col.chosen),
    rejected: renderCompletion(tok, prompt, promptText, rejected, where, col.rejected),
  };
}
