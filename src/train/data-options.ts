// The data options of a training config (columns, truncation, skipping) for the dataset pipeline,
// and the data report's log line: shared by the runs from files (train/run.ts, kto-run.ts) and the
// in-memory API (api/train.ts).
import type { PreferenceDataset } from '../data/pipeline.js';
import type { SftDataset } from '../data/sft.js';
import type { UnpairedDataOptions } from '../data/unpaired.js';
import { COMMON_OPTIONS, type CommonConfig } from './config.js';
import type { KtoConfig } from './kto.js';

/** The data options (columns, truncation, skipping) of a training config. */
export function dataOptions(cfg: CommonConfig) {
  return {
    // A named prompt column must exist; the default one may be absent (implicit prompt, Anthropic HH).
    columns: {
      prompt: cfg.prompt_column === COMMON_OPTIONS.prompt_column.default ? undefined : cfg.prompt_column,
      chosen: cfg.chosen_column,
      rejected: cfg.rejected_column,
    },
    skipInvalid: cfg.skip_invalid,
    maxLength: cfg.max_length > 0 ? cfg.max_length : null,
    maxPromptLength: cfg.max_prompt_length > 0 ? cfg.max_prompt_length : null,
    maxCompletionLength: cfg.max_completion_length > 0 ? cfg.max_completion_length : null,
    truncationMode: cfg.truncation_mode,
  };
}

/** The data options of a KTO config. */
export function ktoDataOptions(cfg: KtoConfig): UnpairedDataOptions {
  return {
    // A named prompt column must exist; the default one may be absent (paired rows with an implicit prompt).
    columns: {
      prompt: cfg.prompt_column === 'prompt' ? undefined : cfg.prompt_column,
      completion: cfg.completion_column,
      label: cfg.label_column,
      chosen: cfg.chosen_column,
      rejected: cfg.rejected_column,
    },
    skipInvalid: cfg.skip_invalid,
    maxLength: cfg.max_length > 0 ? cfg.max_length : null,
  };
}

/** A data report as one log line. */
export function reportLine(name: string, r: PreferenceDataset['report'] | SftDataset['report']): string {
  return (
    `${name}: ${r.rows} examples from ${r.read} rows (${r.format}); truncated ${r.truncated}, ` +
    `dropped ${r.dropped} (prompt alone too long), skipped ${r.skippedInvalid} invalid`
  );
}
