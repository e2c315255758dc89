// Unpaired preference data for `tsdpo kto`, in the formats TRL 1.13's KTOTrainer accepts, detected
// from the first row:
//   unpaired  {prompt, completion, label}: label true = desirable, false = undesirable; strings, or
//             lists of {role, content} rendered with the chat template
//   paired    {prompt?, chosen, rejected} (any format tsdpo dpo reads): unpaired as TRL's
//             unpair_preference_dataset does, per block of 1000 rows (datasets' map batch) the chosen
//             completions (label true) first, then the rejected ones (label false)
// Token ids follow tsdpo dpo's rules (src/data/tokenize.ts): EOS closes a text completion, not a
// conversational one. Completions are kept whole; the batch cuts prompt + completion to max_length
// (keep the start, as TRL 1.13's collator), and an example whose prompt alone fills max_length is
// dropped.
import type { TextTokenizer } from '../tokenizer/types.js';
import { DataError, typeName, whereText, type Where } from './errors.js';
import {
  looksConversational,
  messagesField,
  renderCompletion,
  renderPrompt,
  requireTemplate,
  textField,
} from './messages.js';
import { asDataError, asRecords, describeFormat, type DataReport, type LoadOptions } from './pipeline.js';
import {
  asRow,
  detectPreferenceFormat,
  preferenceText,
  type PreferenceColumns,
  type PreferenceFormat,
} from './preference.js';
import type { RawRecord } from './read.js';
import { encodeCompletion, encodePrompt } from './tokenize.js';

export interface UnpairedExample {
  promptIds: number[];
  /** The whole completion (EOS last for text rows); cut to max_length only when batched. */
  completionIds: number[];
  /** true = desirable. */
  label: boolean;
}

export interface UnpairedColumns extends PreferenceColumns {
  completion?: string;
  label?: string;
}

export interface UnpairedDataOptions extends LoadOptions {
  columns?: UnpairedColumns;
  /** Longest prompt + completion in tokens; null = no limit. */
  maxLength?: number | null;
  skipInvalid?: boolean;
}

export type UnpairedFormat =
  { kind: 'unpaired'; conversational: boolean } | { kind: 'paired'; preference: PreferenceFormat };

/** Tokenized unpaired examples (what KTO trains on): completions labelled desirable or not. */
export interface UnpairedDataset {
  examples: UnpairedExample[];
  sources: Where[];
  format: UnpairedFormat | null;
  report: DataReport & { desirable: number; undesirable: number };
}

/** Rows datasets.map hands to TRL's unpairing function at once (its default batch_size). */
export const UNPAIR_BLOCK = 1000;

function cols(c: UnpairedColumns = {}) {
  return {
    prompt: c.prompt ?? 'prompt',
    completion: c.completion ?? 'completion',
    label: c.label ?? 'label',
    chosen: c.chosen ?? 'chosen',
  };
}

export function detectUnpairedFormat(
  row: Record<string, unknown>,
  where: Where,
  columns: UnpairedColumns = {},
): UnpairedFormat {
  const c = cols(columns);
  const has = (k: string): boolean => row[k] !== undefined && row[k] !== null;
  if (has(c.completion)) return { kind: 'unpaired', conversational: looksConversational(row[c.completion]) };
  if (has(c.chosen)) return { kind: 'paired', preference: detectPreferenceFormat(row, where, columns) };
  throw new DataError(
    where,
    null,
    `has fields ${Object.keys(row).join(', ') || '(none)'}; KTO data needs ` +
      `'${c.prompt}', '${c.completion}' and a boolean '${c.label}' (or ` +
      `preference '${c.chosen}'/'rejected' columns, unpaired as TRL does)`,
  );
}

/** One unpaired row -> its example (before the max_length filter). */
function unpairedExample(
  value: unknown,
  conversational: boolean,
  tok: TextTokenizer,
  where: Where,
  columns: UnpairedColumns,
): UnpairedExample {
  const c = cols(columns);
  const row = asRow(value, where);
  const label = row[c.label];
  if (typeof label !== 'boolean') {
    throw new DataError(
      where,
      c.label,
      `is ${typeName(label)}${label === undefined ? '' : ` (${JSON.stringify(label)})`}; ` +
        `expected true (desirable) or false (undesirable)`,
    );
  }
  if (!conversational) {
    if (looksConversational(row[c.prompt]))
      throw new DataError(
        where,
        c.prompt,
        `is a list of messages but '${c.completion}' is text; both must be text or both messages`,
      );
    return {
      promptIds: encodePrompt(tok, textField(row, c.prompt, where)),
      completionIds: encodeCompletion(tok, textField(row, c.completion, where)),
      label,
    };
  }
  requireTemplate(tok, where);
  const prompt = messagesField(row, c.prompt, where);
  const promptText = renderPrompt(tok, prompt, where, c.prompt);
  const completion = renderCompletion(
    tok,
    prompt,
    promptText,
    messagesField(row, c.completion, where),
    where,
    c.completion,
  );
  // Conversational completions end where the chat template closes the turn: no EOS added (TRL 1.13).
  return { promptIds: encodePrompt(tok, promptText), completionIds: encodeCompletion(tok, completion, false), label };
}

/** Tokenize unpaired (or paired, then unpaired) rows already in memory. */
export function prepareUnpairedDataset(
  rows: RawRecord[] | unknown[],
  tok: TextTokenizer,
  opts: UnpairedDataOptions = {},
  files: string[] = [],
): UnpairedDataset {
  const max = opts.maxLength ?? null;
  if (max !== null && (!Number.isInteger(max) || max < 1))
    throw new Error(`prepareUnpairedDataset: maxLength is ${max}; expected a positive integer or null`);
  if (tok.eosId === null)
    throw new Error(`prepareUnpairedDataset: the tokenizer of ${tok.source} has no EOS token to close completions`);
  const records = asRecords(rows);
  const report: UnpairedDataset['report'] = {
    read: records.length,
    rows: 0,
    truncated: 0,
    dropped: 0,
    skippedInvalid: 0,
    invalid: [],
    files,
    format: '',
    desirable: 0,
    undesirable: 0,
  };
  const examples: UnpairedExample[] = [];
  const sources: Where[] = [];
  let format: UnpairedFormat | null = null;
  const keep = (e: UnpairedExample, where: Where): void => {
    // TRL 1.13 drops an example whose prompt alone fills max_length (no completion token would be left).
    if (max !== null && e.promptIds.length >= max) {
      report.dropped++;
      return;
    }
    if (max !== null && e.promptIds.length + e.completionIds.length > max) report.truncated++;
    examples.push(e);
    sources.push(where);
  };
  for (let start = 0; start < records.length; start += UNPAIR_BLOCK) {
    const rejected: [UnpairedExample, Where][] = [];
    for (const rec of records.slice(start, start + UNPAIR_BLOCK)) {
      try {
        if (rec.error !== undefined) throw new DataError(rec.where, null, rec.error);
        if (format === null) {
          format = detectUnpairedFormat(asRow(rec.value, rec.where), rec.where, opts.columns);
          const conv = format.kind === 'unpaired' ? format.conversational : format.preference.conversational;
          if (conv && !tok.hasChatTemplate) {
            throw new Error(
              `prepareUnpairedDataset: ${whereText(rec.where)} is ` +
                `conversational (lists of {role, content}) but the tokenizer of ` +
                `${tok.source} has no chat template; add chat_template.jinja to the model folder, or use text data`,
            );
          }
        }
        if (format.kind === 'unpaired') {
          keep(unpairedExample(rec.value, format.conversational, tok, rec.where, opts.columns ?? {}), rec.where);
        } else {
          const t = preferenceText(rec.value, format.preference, tok, rec.where, opts.columns);
          const promptIds = encodePrompt(tok, t.prompt),
            eos = !format.preference.conversational;
          keep({ promptIds, completionIds: encodeCompletion(tok, t.chosen, eos), label: true }, rec.where);
          rejected.push([
            { promptIds, completionIds: encodeCompletion(tok, t.rejected, eos), label: false },
            rec.where,
          ]);
        }
      } catch (e) {
        if (!(e instanceof Error) || e.message.startsWith('prepareUnpairedDataset:')) throw e;
        const err = asDataError(e, rec.where);
        if (!opts.skipInvalid) throw err;
        report.skippedInvalid++;
        if (report.invalid.length < 20) report.invalid.push(err.message);
      }
    }
    for (const [e, where] of rejected) keep(e, where);
  }
  for (const e of examples) e.label ? report.desirable++ : report.undesirable++;
  report.rows = examples.length;
  report.format =
    format === null
      ? 'unknown (no valid rows)'
      : format.kind === 'unpaired'
        ? `unpaired${format.conversational ? ', conversational' : ''}; ` +
          `${report.desirable} desirable, ${report.undesirable} undesirable`
        : `paired (${describeFormat(format.preference)}), unpaired into ` +
          `${report.desirable} desirable + ${report.undesirable} undesirable`;
  return { examples, sources, format, report };
}

/**
 * The mismatched completion of each example for KTO's KL estimate (Sec. 4.1 of arXiv:2402.01306), as
 * TRL 1.13 builds it: in consecutive blocks of `block` examples (per_device_train_batch_size, for the
 * eval set too) the completions rotate by one, (x_1, y_n), (x_2, y_1), ..., (x_n, y_{n-1}).
 * A block of one example pairs it with its own completion.
 */
export function klCompletions(examples: readonly Pick<UnpairedExample, 'completionIds'>[], block: number): number[][] {
  if (!Number.isInteger(block) || block < 1)
    throw new Error(`klCompletions: block is ${block}; expected a positive integer`);
  return examples.map((_, i) => {
    const start = i - (i % block),
      end = Math.min(start + block, examples.length);
    return examples[i === start ? end - 1 : i - 1].completionIds;
  });
}
