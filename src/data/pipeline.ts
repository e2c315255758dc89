// Preference dataset pipeline: rows in memory -> format detection -> text -> token ids, with a
// report of what was kept, truncated, dropped and skipped. Reading the rows from files is data/load.ts's.
import type { TextTokenizer } from '../tokenizer/types.js';
import { DataError, whereText, type Where } from './errors.js';
import type { RawRecord, ReadOptions } from './read.js';
import {
  asRow,
  detectPreferenceFormat,
  preferenceText,
  type PreferenceColumns,
  type PreferenceFormat,
  type PromptStyleOption,
} from './preference.js';
import { tokenizePreference, type TokenizedPair, type TruncationOptions } from './tokenize.js';

export interface LoadOptions extends ReadOptions {
  /** Split of a dataset folder: train (default), validation, test (or an alias: eval, dev, ...). */
  split?: string;
}

export interface PreferenceDataOptions extends LoadOptions, TruncationOptions {
  columns?: PreferenceColumns;
  /** How prompt-less text rows are split: auto (HH if it looks like HH, else shared prefix), 'hh', 'implicit'. */
  promptStyle?: PromptStyleOption;
  /** Skip (and count) malformed rows instead of stopping at the first. Default false. */
  skipInvalid?: boolean;
}

/** What a dataset's rows became: examples kept, truncated, dropped and skipped, and the detected format. */
export interface DataReport {
  /** Records read from the files. */
  read: number;
  /** Examples produced. */
  rows: number;
  /** Examples kept but cut by a length limit. */
  truncated: number;
  /** Examples dropped because the prompt alone fills maxLength. */
  dropped: number;
  /** Malformed rows skipped (skipInvalid). */
  skippedInvalid: number;
  /** The first few skipped rows' errors. */
  invalid: string[];
  files: string[];
  /** The detected format, e.g. "conversational, implicit prompt". */
  format: string;
}

/** Tokenized preference pairs (what DPO trains on) with their origins and the report. */
export interface PreferenceDataset {
  examples: TokenizedPair[];
  /** Where each example came from (same order). */
  sources: Where[];
  format: PreferenceFormat | null;
  report: DataReport;
}

export function checkTruncationOptions(fn: string, o: TruncationOptions): void {
  for (const k of ['maxLength', 'maxPromptLength', 'maxCompletionLength'] as const) {
    const v = o[k];
    if (v != null && (!Number.isInteger(v) || v < 1))
      throw new Error(`${fn}: ${k} is ${v}; expected a positive integer or null`);
  }
  if (o.truncationMode !== undefined && o.truncationMode !== 'keep_end' && o.truncationMode !== 'keep_start') {
    throw new Error(`${fn}: truncationMode is '${o.truncationMode}'; expected 'keep_end' or 'keep_start'`);
  }
}

export function describeFormat(f: PreferenceFormat | null): string {
  if (f === null) return 'unknown (no valid rows)';
  const prompt = { explicit: 'explicit prompt', implicit: 'implicit prompt', hh: 'Anthropic HH' }[f.prompt];
  return `${f.conversational ? 'conversational' : 'standard'}, ${prompt}`;
}

/** Records whose `where` is unknown (plain rows in memory) are numbered as rows of "<memory>". */
export function asRecords(rows: RawRecord[] | unknown[]): RawRecord[] {
  return rows.map((r, row) =>
    r && typeof r === 'object' && 'where' in r && 'value' in r
      ? (r as RawRecord)
      : { value: r, where: { file: '<memory>', row } },
  );
}

/** Row-level errors become DataErrors naming the row (a chat template's own errors included). */
export function asDataError(e: unknown, where: Where): DataError {
  if (e instanceof DataError) return e;
  return new DataError(where, null, (e as Error).message ?? String(e));
}

/**
 * A row's error: thrown on, or (skipInvalid) counted in the report and skipped. Errors whose message
 * starts with `fn:` are not row problems and always stop.
 */
export function skipOrThrow(
  e: unknown,
  where: Where,
  report: DataReport,
  skipInvalid: boolean | undefined,
  fn: string,
): void {
  if (!(e instanceof Error) || e.message.startsWith(`${fn}:`)) throw e;
  const err = asDataError(e, where);
  if (!skipInvalid) throw err;
  report.skippedInvalid++;
  if (report.invalid.length < 20) report.invalid.push(err.message);
}

/** Tokenize preference rows already in memory (RawRecords with their origin, or plain row objects). */
export function preparePreferenceDataset(
  rows: RawRecord[] | unknown[],
  tok: TextTokenizer,
  opts: PreferenceDataOptions = {},
  files: string[] = [],
): PreferenceDataset {
  checkTruncationOptions('preparePreferenceDataset', opts);
  if (tok.eosId === null) {
    throw new Error(
      `preparePreferenceDataset: the tokenizer of ${tok.source} has no EOS token to close completions ` +
        `(eos_token in tokenizer_config.json, or eos_token_id in generation_config.json / config.json)`,
    );
  }
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
  const examples: TokenizedPair[] = [];
  const sources: Where[] = [];
  let format: PreferenceFormat | null = null;
  for (const rec of records) {
    let out;
    try {
      if (rec.error !== undefined) throw new DataError(rec.where, null, rec.error);
      if (format === null) {
        format = detectPreferenceFormat(asRow(rec.value, rec.where), rec.where, opts.columns, opts.promptStyle);
        if (format.conversational && !tok.hasChatTemplate) {
          // Not a row problem: stop even with skipInvalid.
          throw new Error(
            `preparePreferenceDataset: ${whereText(rec.where)} is conversational (lists of ` +
              `{role, content}) but the tokenizer of ${tok.source} has no chat template; add chat_template.jinja ` +
              `to the model folder, or use text data`,
          );
        }
      }
      // Conversational completions end where the chat template closes the turn: no EOS added (TRL 1.13).
      out = tokenizePreference(tok, preferenceText(rec.value, format, tok, rec.where, opts.columns), {
        ...opts,
        eos: !format.conversational,
      });
    } catch (e) {
      skipOrThrow(e, rec.where, report, opts.skipInvalid, 'preparePreferenceDataset');
      continue;
    }
    if (out === null) {
      report.dropped++;
      continue;
    }
    if (out.truncated) report.truncated++;
    examples.push(out.value);
    sources.push(rec.where);
  }
  report.rows = examples.length;
  report.format = describeFormat(format);
  return { examples, sources, format, report };
}
