// `tsdpo kto` end to end: KTO's parts (train/methods.ts: the data, the reference as a frozen copy, the
// base model under a new adapter, a frozen copy of a saved adapter, or log-probs precomputed) on the
// run skeleton from files (train/run.ts: the model + LoRA, the splits, the log-prob cache, the final weights).
import type { KtoConfig } from './kto.js';
import { ktoDataOptions as dataOptions } from './data-options.js';
import { ktoMethod } from './methods.js';
import { fileReference, fromFiles, runMethod, type RunOptions, type RunSummary } from './run.js';

export { dataOptions };

export async function runKto(cfg: KtoConfig, opts: RunOptions = {}): Promise<RunSummary> {
  return runMethod(cfg, opts, fromFiles(ktoMethod(cfg, fileReference(cfg, opts))));
}
