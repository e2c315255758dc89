// Reward-model data: preference rows -> the token ids of the whole chosen and the whole rejected
// sequence, by the rules of TRL 1.13's RewardTrainer (trl/trainer/reward_trainer.py _prepare_dataset):
//   text rows           EOS appended to chosen and rejected (unless already there), the prompt (if any)
//                       put in front as text, and the whole string encoded with the tokenizer's own
//                       special tokens (BOS where it adds one)
//   conversational rows prompt messages (if any) + the completion's, through the chat template
//   implicit prompt     rows without a prompt: chosen and rejected are already whole sequences
//   margin              an optional numeric column: the loss wants r_chosen - r_rejected above it
// Rows whose chosen or rejected sequence is longer than maxLength are dropped (never truncated).
import type { TextTokenizer } from '../tokenizer/types.js';
import { loadRecords } from './load.js';
import { DataError, typeName, whereText, type Where } from './errors.js';
import { looksConversational, messagesField, requireTemplate, textField } from './messages.js';
import { asRecords, describeFormat, skipOrThrow, type DataReport, type LoadOptions } from './pipeline.js';
import { asRow, detectPreferenceFormat, type PreferenceColumns, type PreferenceFormat } from './preference.js';
import type { RawRecord } from './read.js';

export interface RewardExample {
  chosenIds: number[];
  rejectedIds: number[];
  /** The row's margin, or null when the dataset has no margin column. */
  margin: number | null;
}

export interface RewardDataOptions extends LoadOptions {
  columns?: PreferenceColumns & { margin?: string };
  /** Rows with a longer chosen or rejected sequence are dropped; null = no limit. */
  maxLength?: number | null;
  skipInvalid?: boolean;
}

export interface RewardDataset {
  examples: RewardExample[];
  sources: Where[];
  format: PreferenceFormat | null;
  /** Whether the rows carry a margin (decided by the first row, as TRL's collator). */
  hasMargin: boolean;
  report: DataReport;
}

/** Token ids of (prompt +) one completion of a row. */
function sequenceIds(
  tok: TextTokenizer,
  row: Record<string, unknown>,
  fmt: PreferenceFormat,
  field: string,
  promptField: string,
  where: Where,
): number[] {
  if (!fmt.conversational) {
    const eos = tok.eosToken!;
    let text = textField(row, field, where);
    if (!text.endsWith(eos)) text += eos;
    if (fmt.prompt === 'explicit') text = textField(row, promptField, where) + text;
    return tok.encode(text);
  }
  const prompt = fmt.prompt === 'explicit' ? messagesField(row, promptField, where) : [];
  // As apply_chat_template(tokenize=True): the rendered text is encoded without added special tokens.
  return tok.encode(tok.applyChatTemplate([...prompt, ...messagesField(row, field, where)]), {
    addSpecialTokens: false,
  });
}

function marginOf(row: Record<string, unknown>, field: string, where: Where): number {
  const v = row[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new DataError(
      where,
      field,
      `is ${typeName(v)}${typeof v === 'number' ? ` (${v})` : ''}; expected a finite number ` +
        '(the first row has a margin, so every row needs one)',
    );
  }
  return v;
}

/** Tokenize reward rows already in memory (RawRecords with their origin, or plain row objects). */
export function prepareRewardDataset(
  rows: RawRecord[] | unknown[],
  tok: TextTokenizer,
  opts: RewardDataOptions = {},
  files: string[] = [],
): RewardDataset {
  const max = opts.maxLength ?? null;
  if (max !== null && (!Number.isInteger(max) || max < 1))
    throw new Error(`prepareRewardDataset: maxLength is ${max}; expected a positive integer or null`);
  if (tok.eosToken === null) {
    throw new Error(
      `prepareRewardDataset: the tokenizer of ${tok.source} has no EOS token to close text rows ` +
        '(eos_token in tokenizer_config.json)',
    );
  }
  const col = {
    prompt: opts.columns?.prompt ?? 'prompt',
    chosen: opts.columns?.chosen ?? 'chosen',
    rejected: opts.columns?.rejected ?? 'rejected',
  };
  const marginCol = opts.columns?.margin ?? 'margin';
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
  const examples: RewardExample[] = [];
  const sources: Where[] = [];
  let format: PreferenceFormat | null = null;
  let hasMargin = false;
  for (const rec of records) {
    let ex: RewardExample;
    try {
      if (rec.error !== undefined) throw new DataError(rec.where, null, rec.error);
      const row = asRow(rec.value, rec.where);
      if (format === null) {
        format = detectPreferenceFormat(row, rec.where, opts.columns, 'implicit');
        hasMargin = row[marginCol] !== undefined && row[marginCol] !== null;
        if (format.conversational && !tok.hasChatTemplate) {
          // Not a row problem: stop even with skipInvalid.
          throw new Error(
            `prepareRewardDataset: ${whereText(rec.where)} is conversational (lists of {role, content}) but ` +
              `the tokenizer of ${tok.source} has no chat template; add ` +
              `chat_template.jinja to the model folder, or use text data`,
          );
        }
      }
      if (format.conversational) requireTemplate(tok, rec.where);
      if (
        format.conversational &&
        format.prompt === 'implicit' &&
        row[col.prompt] != null &&
        !looksConversational(row[col.prompt])
      ) {
        throw new DataError(
          rec.where,
          col.prompt,
          `is ${typeName(row[col.prompt])} but '${col.chosen}' is a list of messages; ` +
            'prompt and completions must both be text or both be messages',
        );
      }
      ex = {
        chosenIds: sequenceIds(tok, row, format, col.chosen, col.prompt, rec.where),
        rejectedIds: sequenceIds(tok, row, format, col.rejected, col.prompt, rec.where),
        margin: hasMargin ? marginOf(row, marginCol, rec.where) : null,
      };
    } catch (e) {
      skipOrThrow(e, rec.where, report, opts.skipInvalid, 'prepareRewardDataset');
      continue;
    }
    if (max !== null && (ex.chosenIds.length > max || ex.rejectedIds.length > max)) {
      report.dropped++;
      continue;
    }
    examples.push(ex);
    sources.push(rec.where);
  }
  report.rows = examples.length;
  report.format = describeFormat(format);
  return { examples, sources, format, hasMargin, report };
}

/** Load and tokenize reward rows from a .jsonl/.json/.parquet file or a dataset folder. */
export async function loadRewardDataset(
  path: string,
  tok: TextTokenizer,
  opts: RewardDataOptions = {},
): Promise<RewardDataset> {
  const { records, files } = await loadRecords(path, opts);
  return prepareRewardDataset(records, tok, opts, files);
}

export interface RewardBatch {
  /** Pairs; the batch holds 2P sequences, chosen_0.. then rejected_0.. */
  P: number;
  T: number;
  /** [2P*T] ids, right-padded with padId. */
  inputIds: Int32Array;
  /** [2P*T] 1 on real tokens. */
  attentionMask: Float32Array;
  /** [2P] flat index (row * T + t) of each sequence's rightmost non-pad token, where transformers reads the score. */
  scoreAt: Int32Array;
  /** [P] margins, or null. */
  margins: Float32Array | null;
  /** Real tokens in the batch (TRL's num_tokens: the attention mask's sum). */
  tokens: number;
}

/** transformers' pooling position: the last token that is not `pad` (0 when every token is). */
export function lastNonPad(ids: ArrayLike<number>, from: number, T: number, pad: number): number {
  for (let t = T - 1; t >= 0; t--) if (ids[from + t] !== pad) return t;
  return 0;
}

/** Collate pairs as TRL's DataCollatorForPreference: chosen rows then rejected rows, right-padded. */
export function collateReward(examples: readonly RewardExample[], padId: number): RewardBatch {
  const P = examples.length;
  if (P === 0) throw new Error('collateReward: empty batch');
  const seqs = [...examples.map((e) => e.chosenIds), ...examples.map((e) => e.rejectedIds)];
  const T = Math.max(...seqs.map((s) => s.length));
  const inputIds = new Int32Array(2 * P * T).fill(padId);
  const attentionMask = new Float32Array(2 * P * T);
  const scoreAt = new Int32Array(2 * P);
  let tokens = 0;
  seqs.forEach((s, b) => {
    inputIds.set(s, b * T);
    attentionMask.fill(1, b * T, b * T + s.length);
    tokens += s.length;
  });
  // Pooled as transformers does, from the ids alone: a pad id inside a sequence (e.g. EOS used as pad)
  // moves the score to the token before it.
  for (let b = 0; b < 2 * P; b++) scoreAt[b] = b * T + lastNonPad(inputIds, b * T, T, padId);
  const margins = examples[0].margin === null ? null : Float32Array.from(examples, (e) => e.margin ?? 0);
  return { P, T, inputIds, attentionMask, scoreAt, margins, tokens };
}
