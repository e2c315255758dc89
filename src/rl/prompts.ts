// Prompt-only training data for GRPO / RLOO: rows with a prompt column (text, or chat messages
// rendered with the chat template and its generation prompt); the other columns are kept for
// reward modules, as TRL passes them to reward functions.
import { DataError, readRecordsFromFile, resolveSplitFiles } from '../data/index.js';
import { looksConversational, messagesField, renderPrompt, requireTemplate, textField } from '../data/messages.js';
import { encodePrompt } from '../data/tokenize.js';
import type { TextTokenizer } from '../tokenizer/types.js';

export interface RlPrompt {
  /** The column's value as the dataset has it (string or messages): what reward functions get. */
  value: unknown;
  /** The prompt as text (chat template applied to messages). */
  text: string;
  ids: number[];
  conversational: boolean;
  /** The row's other columns. */
  columns: Record<string, unknown>;
}

export async function loadPrompts(path: string, tok: TextTokenizer, column: string): Promise<RlPrompt[]> {
  const out: RlPrompt[] = [];
  for (const file of resolveSplitFiles(path, 'train')) {
    for (const r of await readRecordsFromFile(file)) {
      if (r.error !== undefined) throw new DataError(r.where, null, r.error);
      if (!r.value || typeof r.value !== 'object' || Array.isArray(r.value))
        throw new DataError(r.where, null, 'expected an object');
      const row = r.value as Record<string, unknown>;
      if (!(column in row)) throw new DataError(r.where, column, `missing (the prompt column; set --prompt_column)`);
      const conversational = looksConversational(row[column]);
      if (conversational) requireTemplate(tok, r.where);
      const text = conversational
        ? renderPrompt(tok, messagesField(row, column, r.where), r.where, column)
        : textField(row, column, r.where);
      const ids = encodePrompt(tok, text);
      if (ids.length === 0)
        throw new DataError(r.where, column, 'gives no tokens (the tokenizer adds no BOS to start from)');
      const columns = { ...row };
      delete columns[column];
      out.push({ value: row[column], text, ids, conversational, columns });
    }
  }
  if (out.length === 0) throw new Error(`${path}: no prompts`);
  return out;
}
