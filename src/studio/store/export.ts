// The studio's preference rows as files TRL reads: JSON lines or Parquet, in the standard format
// ({prompt, chosen, rejected} strings) or the conversational one (lists of {role, content}) for a
// model with a chat template; and the rows of a preference file to import.
import { extname } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { whereText } from '../../data/errors.js';
import { readRecordsFromFile } from '../../data/read.js';
import { writeFileAtomic } from '../../io/atomic.js';
import type { PreferenceRow } from './store.js';

export type ExportFormat = 'jsonl' | 'parquet';

/** The format a file name asks for (.jsonl or .parquet), or an error naming the file. */
export function exportFormat(file: string): ExportFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl') return 'jsonl';
  if (ext === '.parquet') return 'parquet';
  throw new Error(`${file}: export writes .jsonl or .parquet files, not '${ext || 'no extension'}'`);
}

/** TRL's conversational form of a row: the prompt a user turn, each completion an assistant turn. */
function conversational(r: PreferenceRow): Record<string, unknown> {
  return {
    prompt: [{ role: 'user', content: r.prompt }],
    chosen: [{ role: 'assistant', content: r.chosen }],
    rejected: [{ role: 'assistant', content: r.rejected }],
    ...(r.verdict ? { verdict: r.verdict } : {}),
  };
}

/** The bytes of an export file. */
export function encodeRows(rows: readonly PreferenceRow[], format: ExportFormat, chat: boolean): Uint8Array {
  if (format === 'jsonl') {
    return new TextEncoder().encode(rows.map((r) => `${JSON.stringify(chat ? conversational(r) : r)}\n`).join(''));
  }
  if (chat)
    throw new Error(
      'export: conversational rows (the model has a chat template) ' +
        'are written as .jsonl; Parquet takes the standard format only',
    );
  const columns = ['prompt', 'chosen', 'rejected'] as const;
  const columnData: { name: string; data: string[]; type: 'STRING' }[] = columns.map((name) => ({
    name,
    data: rows.map((r) => r[name]),
    type: 'STRING',
  }));
  if (rows.some((r) => r.verdict))
    columnData.push({ name: 'verdict', data: rows.map((r) => r.verdict ?? ''), type: 'STRING' });
  return new Uint8Array(parquetWriteBuffer({ columnData }));
}

/** Writes the rows to `file` atomically (format from its extension). */
export function writeRows(file: string, rows: readonly PreferenceRow[], chat: boolean): void {
  writeFileAtomic(file, encodeRows(rows, exportFormat(file), chat));
}

/** The text of a completion field: a string, or the content of the last message of a list of {role, content}. */
function textOf(value: unknown, where: string, field: string): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length > 0) {
    const last = value[value.length - 1] as { content?: unknown };
    if (typeof last?.content === 'string') return last.content;
  }
  throw new Error(`${where}: field '${field}' is neither a string nor a list of {role, content} messages`);
}

/** A preference row {prompt, chosen, rejected} of a record (standard or conversational); errors name `where`. */
export function preferenceRow(value: unknown, where: string): { prompt: string; chosen: string; rejected: string } {
  const row = value as Record<string, unknown>;
  if (typeof row !== 'object' || row === null)
    throw new Error(`${where}: expected an object with prompt, chosen and rejected`);
  for (const f of ['prompt', 'chosen', 'rejected']) if (!(f in row)) throw new Error(`${where}: missing field '${f}'`);
  return {
    prompt: textOf(row.prompt, where, 'prompt'),
    chosen: textOf(row.chosen, where, 'chosen'),
    rejected: textOf(row.rejected, where, 'rejected'),
  };
}

/**
 * Rows {prompt, chosen, rejected} of a preference file (.jsonl / .json / .parquet, standard or
 * conversational; a conversational prompt is its last turn's text).
 */
export async function readPreferenceFile(
  file: string,
): Promise<{ prompt: string; chosen: string; rejected: string }[]> {
  const records = await readRecordsFromFile(file);
  return records.map((r) => {
    const where = whereText(r.where);
    if (r.error) throw new Error(`${where}: ${r.error}`);
    return preferenceRow(r.value, where);
  });
}

/** Rows of JSON lines text (an upload), errors naming `name` and the line. */
export function preferenceRowsOfText(
  text: string,
  name: string,
): { prompt: string; chosen: string; rejected: string }[] {
  const rows: { prompt: string; chosen: string; rejected: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(`${name} line ${i + 1}: not JSON`);
    }
    rows.push(preferenceRow(value, `${name} line ${i + 1}`));
  });
  return rows;
}
