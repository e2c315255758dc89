// Datasets from files (Node): the records of a .jsonl / .json / .parquet file or of a dataset
// folder's split, and the preference, SFT and KTO datasets made from them. The rest of data/ works
// on rows in memory (browsers give rows, not paths).
import type { TextTokenizer } from '../tokenizer/types.js';
import {
  checkTruncationOptions,
  preparePreferenceDataset,
  type LoadOptions,
  type PreferenceDataOptions,
  type PreferenceDataset,
} from './pipeline.js';
import { readRecordsFromFile, type RawRecord } from './read.js';
import { prepareSftDataset, type SftDataOptions, type SftDataset } from './sft.js';
import { resolveSplitFiles } from './splits.js';
import { prepareUnpairedDataset, type UnpairedDataOptions, type UnpairedDataset } from './unpaired.js';

/** Read every record of a dataset path (file or folder) for a split. */
export async function loadRecords(
  path: string,
  opts: LoadOptions = {},
): Promise<{ records: RawRecord[]; files: string[] }> {
  const files = resolveSplitFiles(path, opts.split ?? 'train');
  const records: RawRecord[] = [];
  for (const f of files) records.push(...(await readRecordsFromFile(f, opts)));
  return { records, files };
}

/** Load and tokenize a preference dataset from a .jsonl/.json/.parquet file or a dataset folder. */
export async function loadPreferenceDataset(
  path: string,
  tok: TextTokenizer,
  opts: PreferenceDataOptions = {},
): Promise<PreferenceDataset> {
  checkTruncationOptions('loadPreferenceDataset', opts);
  const { records, files } = await loadRecords(path, opts);
  return preparePreferenceDataset(records, tok, opts, files);
}

/** Load and tokenize an SFT dataset (file or dataset folder). */
export async function loadSftDataset(path: string, tok: TextTokenizer, opts: SftDataOptions = {}): Promise<SftDataset> {
  const { records, files } = await loadRecords(path, opts);
  return prepareSftDataset(records, tok, opts, files);
}

/** Load and tokenize KTO data (file or dataset folder). */
export async function loadUnpairedDataset(
  path: string,
  tok: TextTokenizer,
  opts: UnpairedDataOptions = {},
): Promise<UnpairedDataset> {
  const { records, files } = await loadRecords(path, opts);
  return prepareUnpairedDataset(records, tok, opts, files);
}
