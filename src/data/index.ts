// Datasets: reading files, preference and SFT formats, tokenization rules, batching, sampling.
export { DataError, whereText, type Where } from './errors.js';
export { readRecordsFromFile, fileKind, type RawRecord, type ReadOptions, type FileKind } from './read.js';
export { resolveSplitFiles, listSplits, SPLIT_KEYWORDS } from './splits.js';
export {
  detectPreferenceFormat,
  preferenceText,
  sharedPrefixLength,
  type PreferenceColumns,
  type PreferenceFormat,
  type PreferenceText,
  type PromptStyle,
  type PromptStyleOption,
} from './preference.js';
export {
  encodePrompt,
  encodeCompletion,
  truncatePrompt,
  truncateExample,
  tokenizePreference,
  type TokenizedPair,
  type TruncationOptions,
} from './tokenize.js';
export { loadRecords, loadPreferenceDataset, loadSftDataset } from './load.js';
export {
  preparePreferenceDataset,
  type DataReport,
  type LoadOptions,
  type PreferenceDataOptions,
  type PreferenceDataset,
} from './pipeline.js';
export {
  prepareSftDataset,
  detectSftFormat,
  sftIds,
  labelsOf,
  spanMask,
  type SftColumns,
  type SftDataOptions,
  type SftDataset,
  type SftExample,
  type SftFormat,
} from './sft.js';
export { packSft, PACKING_STRATEGIES, type PackingStrategy } from './packing.js';
export { numpyPermutation } from './numpy-order.js';
export {
  collatePreference,
  collateSft,
  padIdFor,
  type CollateOptions,
  type PreferenceBatch,
  type SftBatch,
} from './collate.js';
export {
  EpochSampler,
  epochPermutation,
  type DataPosition,
  type SamplerOptions,
  type SamplerState,
} from './sampler.js';
