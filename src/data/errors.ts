// Where a record came from (file + 1-based line, or file + row index) and the error that names it.

export interface Where {
  file: string;
  /** 1-based line of a JSON-lines file. */
  line?: number;
  /** 0-based row index in a Parquet file or a JSON array / column file. */
  row?: number;
}

export function whereText(w: Where): string {
  if (w.line !== undefined) return `${w.file} line ${w.line}`;
  if (w.row !== undefined) return `${w.file} row index ${w.row}`;
  return w.file;
}

/** A bad record: names the file, the line or row, and the field. */
export class DataError extends Error {
  constructor(
    readonly where: Where,
    readonly field: string | null,
    readonly problem: string,
  ) {
    super(`${whereText(where)}${field === null ? '' : `: field '${field}'`}: ${problem}`);
    this.name = 'DataError';
  }
}

/** Describe a JSON value's type for messages ("a string", "an array", "null", ...). */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  return `a ${typeof v}`;
}
