// tsdpo in browsers (and any JavaScript runtime without file access): models, tokenizers and LoRA
// adapters from File objects or ArrayBuffers; training (DPO, SFT, KTO) on rows in memory with TRL's
// option names; log-probs, generation and evaluation; the loss registry. Node's entry
// (src/index.ts) adds everything that reads or writes folders.

/** Device choice: initEngine({ device: 'cpu' | 'webgpu' | 'auto' }) creates the backend and makes it the default. */
export { initEngine, DEVICES, type DeviceName, type EngineOptions } from './engine.js';
export {
  adapterFromFiles,
  modelFromFiles,
  readFileSet,
  tokenizerFromFiles,
  FolderBytes,
  type FileData,
  type FileSet,
} from './api/files.js';
export {
  METHOD_OPTIONS,
  resolveConfig,
  train,
  type Method,
  type MethodConfigs,
  type TrainInputs,
  type TrainSummary,
} from './api/train.js';
export { Run, type TrainEvent } from './api/events.js';
export {
  evaluate,
  generate,
  logprobs,
  pairLogprobs,
  type Completion,
  type EvaluateOptions,
  type EvaluateResult,
  type GenerateOptions,
  type PairLogprob,
  type RewardFn,
  type SequenceLogprob,
  type SequenceRow,
} from './api/infer.js';
export * from './api/losses.js';
export { buildModel } from './models/build.js';
export { adapterOf, mergeAdapter, newAdapter, type AdapterInfo, type NewAdapterOptions } from './models/adapter.js';
export type { CausalLM } from './models/model.js';
export type { TextTokenizer, ChatMessage } from './tokenizer/types.js';
export {
  preparePreferenceDataset as preferenceDataset,
  type PreferenceDataset,
  type DataReport,
} from './data/pipeline.js';
export { prepareSftDataset as sftDataset, type SftDataset } from './data/sft.js';
export { prepareUnpairedDataset as unpairedDataset, type UnpairedDataset } from './data/unpaired.js';
export type { CommonConfig, DpoConfig, SftConfig, OptionSpec } from './train/config.js';
export type { KtoConfig } from './train/kto.js';
