// Field checks shared by the preference and SFT formats: text fields, message lists ({role, content}),
// TRL's test for conversational data, and the chat-template rendering TRL applies to prompt/completion.
import type { ChatMessage, TextTokenizer } from '../tokenizer/types.js';
import { DataError, typeName, type Where } from './errors.js';

/** TRL's is_conversational: a list whose first item is an object with "role" and "content". */
export function looksConversational(v: unknown): boolean {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    !!v[0] &&
    typeof v[0] === 'object' &&
    'role' in (v[0] as object) &&
    'content' in (v[0] as object)
  );
}

/** A non-empty string field, or a DataError naming it. */
export function textField(row: Record<string, unknown>, field: string, where: Where): string {
  const v = row[field];
  if (v === undefined || v === null) throw new DataError(where, field, 'is missing');
  if (typeof v !== 'string') {
    throw new DataError(where, field, `is ${typeName(v)}; expected a string (this dataset's rows hold text)`);
  }
  if (v.length === 0) throw new DataError(where, field, 'is empty');
  return v;
}

/** A non-empty list of {role, content} messages with string role and content, or a DataError. */
export function messagesField(row: Record<string, unknown>, field: string, where: Where): ChatMessage[] {
  const v = row[field];
  if (v === undefined || v === null) throw new DataError(where, field, 'is missing');
  if (!Array.isArray(v)) {
    throw new DataError(
      where,
      field,
      `is ${typeName(v)}; expected a list of {role, content} messages ` + `(this dataset is conversational)`,
    );
  }
  if (v.length === 0) throw new DataError(where, field, 'is an empty list of messages');
  v.forEach((m, i) => {
    if (!m || typeof m !== 'object' || Array.isArray(m)) {
      throw new DataError(where, `${field}[${i}]`, `is ${typeName(m)}; expected a {role, content} message`);
    }
    const msg = m as Record<string, unknown>;
    if (typeof msg.role !== 'string')
      throw new DataError(where, `${field}[${i}].role`, `is ${typeName(msg.role)}; expected a string`);
    if (typeof msg.content !== 'string') {
      throw new DataError(
        where,
        `${field}[${i}].content`,
        `is ${typeName(msg.content)}; expected a string ` + `(multimodal content lists are not supported)`,
      );
    }
  });
  return v as ChatMessage[];
}

/** Value equality for JSON-like data (strings, message lists). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a),
      kb = Object.keys(b);
    return (
      ka.length === kb.length &&
      ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
    );
  }
  return false;
}

export function requireTemplate(tok: TextTokenizer, where: Where): void {
  if (!tok.hasChatTemplate) {
    throw new DataError(
      where,
      null,
      `the data is conversational (lists of {role, content}) but the tokenizer of ` +
        `${tok.source} has no chat template; add chat_template.jinja to the model folder, or use text data`,
    );
  }
}

/**
 * TRL's rendering of a prompt: with the generation prompt when it ends with a user turn, continuing the
 * final message when it ends with an assistant turn (any other last role is an error).
 */
export function renderPrompt(tok: TextTokenizer, prompt: ChatMessage[], where: Where, field: string): string {
  const last = prompt[prompt.length - 1].role;
  if (last !== 'user' && last !== 'assistant') {
    throw new DataError(
      where,
      field,
      `ends with a '${last}' message; a prompt must end with a 'user' turn ` + `(or an 'assistant' turn to continue)`,
    );
  }
  return tok.applyChatTemplate(prompt, {
    addGenerationPrompt: last === 'user',
    continueFinalMessage: last === 'assistant',
  });
}

/** The completion text: render(prompt + completion) minus the rendered prompt, which must be its prefix. */
export function renderCompletion(
  tok: TextTokenizer,
  prompt: ChatMessage[],
  promptText: string,
  completion: ChatMessage[],
  where: Where,
  field: string,
): string {
  const full = tok.applyChatTemplate([...prompt, ...completion]);
  if (!full.startsWith(promptText)) {
    throw new DataError(
      where,
      field,
      `the chat template applied to prompt + ${field} does not start with the ` +
        `template applied to the prompt alone, so the completion cannot be cut out.\nPrompt: ` +
        `${JSON.stringify(promptText)}\nPrompt + ${field}: ${JSON.stringify(full)}`,
    );
  }
  return full.slice(promptText.length);
}
