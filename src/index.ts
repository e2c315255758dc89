// tsdpo as a library in Node: everything of the browser entry (src/browser.ts), plus models,
// tokenizers, adapters and datasets from local folders and files, saving, and whole runs from a
// configuration to an output folder as `tsdpo dpo` / `sft` / `kto` / `reward` / `grpo` / `rloo` /
// `ppo` run them (the CLI is a thin layer over these).
export * from './browser.js';
export { loadModel, saveModel } from './models/load.js';
export { loadAdapter, saveAdapter } from './models/lora.js';
export { loadTokenizer } from './tokenizer/load.js';
export { loadPreferenceDataset, loadSftDataset, loadUnpairedDataset } from './data/load.js';
export {
  runTraining,
  runConfig,
  RUN_METHODS,
  type RunMethod,
  type RunConfigs,
  type RunSummary,
  type RunTrainingOptions,
} from './api/run.js';
export { loadReward, readPrompts } from './api/prompts.js';
/** The demo's reward: sigmoid(AFINN sentiment score / 2) of a completion, in (0, 1). */
export { reward as sentimentReward } from './eval/reward.js';
