// SFT datasets for `tsdpo sft`, in TRL's SFT formats, detected from the first row:
//   text               {text}: loss on every token; EOS appended unless the text already ends with it
//   prompt-completion  {prompt, completion} strings or messages: loss on the completion only
//                      (TRL's completion_only_loss default); EOS appended to text completions
//   messages           {messages}: the whole conversation through the chat template, loss on every token
//   preference         {prompt?, chosen, rejected}: prompt + chosen, the exact chosen sequence DPO sees
// Prompt and completion are encoded separately, with BOS once at the start when the tokenizer adds BOS,
// as for DPO (src/data/tokenize.ts), so SFT-then-DPO sees the same token boundaries. Sequences longer
// than maxLength keep their start (truncationMode keep_end: their end); as TRL 1.13, an example left with
// no loss token is dropped. assistantOnlyLoss: loss only on the tokens inside the chat template's
// {% generation %} blocks (transformers' assistant_masks), and with the completion mask when both apply.
import { splitGenerationMarkers } from '../tokenizer/chat-template.js';
import type { ChatMessage, TextTokenizer } from '../tokenizer/types.js';
import { DataError, whereText, type Where } from './errors.js';
import { looksConversational, messagesField, renderCompletion, renderPrompt, textField } from './messages.js';
import { asRecords, describeFormat, skipOrThrow, type DataReport, type LoadOptions } from './pipeline.js';
import {
  asRow,
  detectPreferenceFormat,
  preferenceText,
  type PreferenceColumns,
  type PreferenceFormat,
  type PromptStyleOption,
} from './preference.js';
import type { RawRecord } from './read.js';
import { encodeCompletion, encodePrompt } from './tokenize.js';

export interface SftColumns {
  text?: string;
  prompt?: string;
  completion?: string;
  messages?: string;
}

export type SftFormat =
  | { kind: 'text' }
  | { kind: 'prompt-completion'; conversational: boolean }
  | { kind: 'messages' }
  | { kind: 'preference'; preference: PreferenceFormat };

export interface SftExample {
  ids: number[];
  /** Loss is taken on ids[promptLength..]; 0 = every token. */
  promptLength: number;
  /** Per token, 1 where it counts in the loss (TRL's labels != -100); when present it replaces promptLength. */
  labels?: number[];
  /** A packed example: the lengths of the sequences laid end to end in ids (each attends only within itself). */
  seqLengths?: number[];
}

/** Per token 1 = counts in the loss (a target when it is not the first token of its sequence). */
export function labelsOf(e: SftExample): number[] {
  return e.labels ?? e.ids.map((_, i) => (i >= e.promptLength ? 1 : 0));
}

export interface SftDataOptions extends LoadOptions {
  columns?: SftColumns & PreferenceColumns;
  /** Longest sequence in tokens; null = no limit. */
  maxLength?: number | null;
  /** prompt-completion data: loss on the completion only (default true); false = on every token. */
  completionOnlyLoss?: boolean;
  /** Which end of a sequence longer than maxLength to keep (TRL 1.13: keep_start; keep_end is deprecated). */
  truncationMode?: 'keep_start' | 'keep_end';
  /** Conversational rows: loss only on the template's {% generation %} blocks (TRL's assistant_only_loss). */
  assistantOnlyLoss?: boolean;
  /** For preference rows without a prompt column: see PreferenceDataOptions.promptStyle. */
  promptStyle?: PromptStyleOption;
  skipInvalid?: boolean;
}

/** Tokenized SFT examples (ids and loss mask) with their origins and the report. */
export interface SftDataset {
  examples: SftExample[];
  sources: Where[];
  format: SftFormat | null;
  report: DataReport;
}

function cols(c: SftDataOptions['columns'] = {}) {
  return {
    text: c.text ?? 'text',
    prompt: c.prompt ?? 'prompt',
    completion: c.completion ?? 'completion',
    messages: c.messages ?? 'messages',
    chosen: c.chosen ?? 'chosen',
  };
}

export function detectSftFormat(row: Record<string, unknown>, where: Where, opts: SftDataOptions = {}): SftFormat {
  const c = cols(opts.columns);
  const has = (k: string) => row[k] !== undefined && row[k] !== null;
  if (has(c.messages)) return { kind: 'messages' };
  if (has(c.completion)) return { kind: 'prompt-completion', conversational: looksConversational(row[c.completion]) };
  if (has(c.chosen)) {
    return { kind: 'preference', preference: detectPreferenceFormat(row, where, opts.columns, opts.promptStyle) };
  }
  if (has(c.text)) return { kind: 'text' };
  throw new DataError(
    where,
    null,
    `has fields ${Object.keys(row).join(', ') || '(none)'}; SFT data needs ` +
      `'${c.text}', '${c.prompt}' + '${c.completion}', '${c.messages}', or preference '${c.chosen}'/'rejected' columns`,
  );
}

/**
 * Plain text and EOS. TRL 1.13 appends EOS only to a column named `text` (not to another dataset_text_field): so do we.
 */
function sftText(tok: TextTokenizer, text: string, addEos: boolean): number[] {
  const ids = encodePrompt(tok, text);
  if (addEos && (tok.eosToken === null || !text.endsWith(tok.eosToken))) ids.push(tok.eosId!);
  return ids;
}

/** One row -> ids and loss start, before truncation. */
export function sftIds(
  value: unknown,
  fmt: SftFormat,
  tok: TextTokenizer,
  where: Where,
  opts: SftDataOptions = {},
): SftExample {
  const c = cols(opts.columns);
  const row = asRow(value, where);
  const completionOnly = opts.completionOnlyLoss ?? true;
  switch (fmt.kind) {
    case 'text':
      return { ids: sftText(tok, textField(row, c.text, where), c.text === 'text'), promptLength: 0 };
    case 'messages': {
      const msgs = messagesField(row, c.messages, where);
      if (!opts.assistantOnlyLoss) return { ids: encodePrompt(tok, tok.applyChatTemplate(msgs)), promptLength: 0 };
      const { text, spans } = generationSpans(tok, msgs, where, c.messages);
      const ids = encodePrompt(tok, text);
      return { ids, promptLength: 0, labels: spanMask(tok, ids, text, spans) };
    }
    case 'prompt-completion': {
      let prompt: number[], completion: number[];
      if (fmt.conversational) {
        const p = messagesField(row, c.prompt, where);
        const pText = renderPrompt(tok, p, where, c.prompt);
        prompt = encodePrompt(tok, pText);
        const comp = messagesField(row, c.completion, where);
        const cText = renderCompletion(tok, p, pText, comp, where, c.completion);
        completion = tok.encode(cText, { addSpecialTokens: false });
        if (opts.assistantOnlyLoss) {
          const { text, spans } = generationSpans(tok, [...p, ...comp], where, c.completion);
          if (text !== pText + cText)
            throw new DataError(
              where,
              c.completion,
              `the chat template renders differently with {% generation %} markers kept`,
            );
          const ids = [...prompt, ...completion];
          const labels = spanMask(tok, ids, text, spans).map((m, i) =>
            m && (!completionOnly || i >= prompt.length) ? 1 : 0,
          );
          return { ids, promptLength: 0, labels };
        }
      } else {
        prompt = encodePrompt(tok, textField(row, c.prompt, where));
        completion = encodeCompletion(tok, textField(row, c.completion, where));
      }
      return { ids: [...prompt, ...completion], promptLength: completionOnly ? prompt.length : 0 };
    }
    case 'preference': {
      const t = preferenceText(value, fmt.preference, tok, where, opts.columns);
      const prompt = encodePrompt(tok, t.prompt);
      return { ids: [...prompt, ...encodeCompletion(tok, t.chosen)], promptLength: completionOnly ? prompt.length : 0 };
    }
  }
}

/** The conversation rendered with its {% generation %} block spans (what transformers' assistant_masks come from). */
function generationSpans(tok: TextTokenizer, msgs: ChatMessage[], where: Where, field: string) {
  const out = splitGenerationMarkers(tok.applyChatTemplate(msgs, { markGeneration: true }));
  if (out.spans.length === 0 || out.spans.every(([a, b]) => a === b)) {
    throw new DataError(
      where,
      field,
      `assistant_only_loss: the chat template of ${tok.source} marks no assistant tokens ` +
        `here; it needs {% generation %} ... {% endgeneration %} around the assistant's reply`,
    );
  }
  return out;
}

/**
 * 1 on the tokens of ids that cover a character of a span of text (transformers' char_to_token rule:
 * from the token holding a span's first character to the one holding its last). Token ends come
 * from the decoded length of each prefix (binary search), so any tokenizer works without offsets;
 * a BOS that encodePrompt put in front of the text is skipped.
 */
export function spanMask(
  tok: TextTokenizer,
  ids: number[],
  text: string,
  spans: ReadonlyArray<readonly [number, number]>,
): number[] {
  const mask = new Array<number>(ids.length).fill(0);
  const skip =
    ids.length > 0 && ids[0] === tok.bosId && tok.bosToken !== null && !text.startsWith(tok.bosToken) ? 1 : 0;
  const ends = new Map<number, number>();
  const end = (i: number): number => {
    // characters decoded up to and including token i
    let v = ends.get(i);
    if (v === undefined) ends.set(i, (v = tok.decode(ids.slice(skip, i + 1)).length));
    return v;
  };
  const tokenAt = (ch: number): number | null => {
    if (skip >= ids.length || end(ids.length - 1) <= ch) return null;
    let lo = skip,
      hi = ids.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (end(mid) > ch) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  for (const [a, b] of spans) {
    const first = tokenAt(a);
    if (first === null) break; // past the end (transformers stops there too)
    const last = tokenAt(b - 1);
    for (let t = first; t < (last ? last + 1 : ids.length); t++) mask[t] = 1;
  }
  return mask;
}

export function describeSftFormat(f: SftFormat | null): string {
  if (f === null) return 'unknown (no valid rows)';
  if (f.kind === 'prompt-completion') return `prompt-completion${f.conversational ? ', conversational' : ''}`;
  if (f.kind === 'preference') return `preference prompt + chosen (${describeFormat(f.preference)})`;
  return f.kind;
}

const needsTemplate = (f: SftFormat) =>
  f.kind === 'messages' ||
  (f.kind === 'prompt-completion' && f.conversational) ||
  (f.kind === 'preference' && f.preference.conversational);

/** Tokenize SFT rows already in memory. */
export function prepareSftDataset(
  rows: RawRecord[] | unknown[],
  tok: TextTokenizer,
  opts: SftDataOptions = {},
  files: string[] = [],
): SftDataset {
  if (opts.maxLength != null && (!Number.isInteger(opts.maxLength) || opts.maxLength < 1)) {
    throw new Error(`prepareSftDataset: maxLength is ${opts.maxLength}; expected a positive integer or null`);
  }
  if (tok.eosId === null) throw new Error(`prepareSftDataset: the tokenizer of ${tok.source} has no EOS token`);
  const records = asRecords(rows);
  const report: DataReport = {
    read: records.length,
    rows: 0,
    truncated: 0,
    dropped: 0,
    skippedInvalid: 0,
    invalid: [],
    files,
    format: '',
  };
  const examples: SftExample[] = [];
  const sources: Where[] = [];
  let format: SftFormat | null = null;
  for (const rec of records) {
    let ex: SftExample;
    try {
      if (rec.error !== undefined) throw new DataError(rec.where, null, rec.error);
      if (format === null) {
        format = detectSftFormat(asRow(rec.value, rec.where), rec.where, opts);
        if (needsTemplate(format) && !tok.hasChatTemplate) {
          throw new Error(
            `prepareSftDataset: ${whereText(rec.where)} is conversational but the tokenizer of ` +
              `${tok.source} has no chat template; add chat_template.jinja to the model folder, or use text data`,
          );
        }
        if (
          opts.assistantOnlyLoss &&
          !(format.kind === 'messages' || (format.kind === 'prompt-completion' && format.conversational))
        ) {
          throw new Error(
            `prepareSftDataset: assistant_only_loss needs conversational rows (messages, or prompt + ` +
              `completion messages); ${whereText(rec.where)} is ${describeSftFormat(format)}`,
          );
        }
      }
      ex = sftIds(rec.value, format, tok, rec.where, opts);
    } catch (e) {
      skipOrThrow(e, rec.where, report, opts.skipInvalid, 'prepareSftDataset');
      continue;
    }
    const max = opts.maxLength;
    if (max != null) {
      // As TRL 1.13: cut to max_length (keep_start, or keep_end), then drop examples with no label left.
      let labels = labelsOf(ex);
      const long = ex.ids.length > max;
      if (long) {
        const cut = <T>(a: T[]): T[] => (opts.truncationMode === 'keep_end' ? a.slice(-max) : a.slice(0, max));
        labels = cut(labels);
        ex =
          ex.labels || opts.truncationMode === 'keep_end'
            ? { ids: cut(ex.ids), promptLength: 0, labels }
            : { ids: cut(ex.ids), promptLength: ex.promptLength };
      }
      if (!labels.includes(1)) {
        report.dropped++;
        continue;
      }
      if (long) report.truncated++;
    }
    examples.push(ex);
    sources.push(rec.where);
  }
  report.rows = examples.length;
  report.format = describeSftFormat(format);
  return { examples, sources, format, report };
}
