// Reading dataset files into records, each tagged with where it came from. What Hugging Face `datasets`
// accepts for its json and parquet builders: JSON lines (.jsonl, or .json holding one object a line),
// a JSON array of objects, a JSON object of equal-length columns (or one key of it, `field`), Parquet.
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { DataError, typeName, type Where } from './errors.js';

export interface RawRecord {
  value: unknown;
  where: Where;
  /** Set when the record could not be parsed (a malformed JSON line); value is then undefined. */
  error?: string;
}

export interface ReadOptions {
  /** For a .json file holding an object: the key whose value (array of rows, or columns) is the data. */
  field?: string;
}

export type FileKind = 'jsonl' | 'json' | 'parquet';

export function fileKind(path: string): FileKind | null {
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.json') return 'json';
  if (ext === '.parquet') return 'parquet';
  return null;
}

function lineOfOffset(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * Where a JSON document fails to parse: V8's messages do not always give a position, so split a top-level
 * array into its elements (tracking strings and nesting) and parse each; the first bad one gives the line.
 */
function locateJsonError(text: string): { line: number; row?: number } | null {
  const start = text.search(/\S/);
  if (start < 0 || text[start] !== '[') return null;
  let depth = 0,
    inString = false,
    elemStart = start + 1,
    row = 0;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}' || ch === ',') {
      if (ch !== ',') depth--;
      if ((ch === ',' && depth === 1) || depth === 0) {
        const elem = text.slice(elemStart, i);
        if (elem.trim() !== '' || ch === ',') {
          try {
            JSON.parse(elem);
          } catch {
            return { line: lineOfOffset(text, elemStart + (elem.length - elem.trimStart().length)), row };
          }
        }
        elemStart = i + 1;
        row++;
        if (depth === 0) return null;
      }
    }
  }
  return { line: lineOfOffset(text, text.length) };
}

function readJsonLines(file: string, text: string): RawRecord[] {
  const out: RawRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      // Reported (or skipped) by the pipeline, which knows whether invalid rows are skipped.
      out.push({ value: undefined, where: { file, line: i + 1 }, error: `malformed JSON (${(e as Error).message})` });
      continue;
    }
    out.push({ value, where: { file, line: i + 1 } });
  }
  return out;
}

/** Rows from a parsed .json object: {field: rows-or-columns} or {column: [values...]}. */
function rowsOfObject(file: string, obj: Record<string, unknown>, field: string | undefined): RawRecord[] {
  let data: unknown = obj;
  if (field !== undefined) {
    if (!(field in obj)) {
      throw new DataError({ file }, field, `not in the file (its keys: ${Object.keys(obj).join(', ')})`);
    }
    data = obj[field];
  }
  if (Array.isArray(data)) return data.map((value, row) => ({ value, where: { file, row } }));
  if (data && typeof data === 'object') {
    const cols = Object.entries(data as Record<string, unknown>);
    const n = Array.isArray(cols[0]?.[1]) ? (cols[0][1] as unknown[]).length : -1;
    if (n >= 0 && cols.every(([, v]) => Array.isArray(v) && v.length === n)) {
      return Array.from({ length: n }, (_, row) => ({
        value: Object.fromEntries(cols.map(([k, v]) => [k, (v as unknown[])[row]])),
        where: { file, row },
      }));
    }
  }
  throw new DataError(
    { file },
    field ?? null,
    `is ${typeName(data)} but should be a list of rows or an object of ` +
      `equal-length columns${field === undefined ? ` (a dict like {"train": [...]} needs the field option)` : ''}`,
  );
}

function readJson(file: string, text: string, opts: ReadOptions): RawRecord[] {
  const body = text.trim();
  const nonBlank = body.split('\n').filter((l) => l.trim() !== '').length;
  // One object on each line is JSON lines (as `datasets` reads it first); an array or a multi-line
  // object is one JSON document.
  if (body.startsWith('{') && opts.field === undefined) {
    let whole: unknown;
    try {
      whole = JSON.parse(body);
    } catch {
      return readJsonLines(file, text);
    }
    if (nonBlank === 1)
      return [{ value: whole, where: { file, line: text.split('\n').findIndex((l) => l.trim() !== '') + 1 } }];
    return rowsOfObject(file, whole as Record<string, unknown>, undefined);
  }
  let whole: unknown;
  try {
    whole = JSON.parse(body);
  } catch (e) {
    const at = locateJsonError(text);
    throw new DataError(
      at ? { file, line: at.line } : { file },
      null,
      `malformed JSON${at?.row !== undefined ? ` in row index ${at.row}` : ''} (${(e as Error).message})`,
    );
  }
  if (Array.isArray(whole) && opts.field === undefined)
    return whole.map((value, row) => ({ value, where: { file, row } }));
  if (whole && typeof whole === 'object' && !Array.isArray(whole))
    return rowsOfObject(file, whole as Record<string, unknown>, opts.field);
  throw new DataError(
    { file },
    null,
    `holds ${typeName(whole)}; expected JSON lines, a list of rows, or an object of columns`,
  );
}

async function readParquet(file: string): Promise<RawRecord[]> {
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: await asyncBufferFromFile(file), compressors });
  } catch (e) {
    throw new DataError({ file }, null, `cannot read Parquet: ${(e as Error).message}`);
  }
  return rows.map((value, row) => ({ value, where: { file, row } }));
}

/** All records of one file (.jsonl, .json or .parquet). */
export async function readRecordsFromFile(file: string, opts: ReadOptions = {}): Promise<RawRecord[]> {
  const kind = fileKind(file);
  if (kind === null) {
    throw new DataError(
      { file },
      null,
      `unknown file type '${extname(file) || basename(file)}' ` + `(tsdpo reads .jsonl, .json and .parquet)`,
    );
  }
  if (kind === 'parquet') return readParquet(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError({ file }, null, `cannot read: ${(e as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return kind === 'jsonl' ? readJsonLines(file, text) : readJson(file, text, opts);
}
