// Options of `tsdpo grpo` and `tsdpo rloo`, with TRL 1.13's names and defaults (GRPOConfig,
// RLOOConfig). The training options (learning rate, steps, LoRA, ...) are the shared table's
// (src/train/config.ts) minus the preference-data ones; each option is documented once, here.
import { COMMON_OPTIONS, type CommonConfig, type ConfigOf, type OptionSpec } from '../train/config.js';

/** Shared options that make no sense for prompt-only data. */
const PREFERENCE_ONLY = [
  'chosen_column',
  'rejected_column',
  'max_length',
  'max_prompt_length',
  'truncation_mode',
  'eval_dataset',
  'eval_steps',
  'per_device_eval_batch_size',
] as const;
type PreferenceOnly = (typeof PREFERENCE_ONLY)[number];

function trainingOptions(): Omit<typeof COMMON_OPTIONS, PreferenceOnly> {
  const out: Record<string, OptionSpec> = { ...COMMON_OPTIONS };
  for (const k of PREFERENCE_ONLY) delete out[k];
  return out as Omit<typeof COMMON_OPTIONS, PreferenceOnly>;
}

/** What GRPO and RLOO share: sampling, rewards, clipping, the reference. */
const ROLLOUT_OPTIONS = {
  dataset: {
    ...COMMON_OPTIONS.dataset,
    help: 'prompts: a .jsonl / .json / .parquet file (or folder) whose prompt_column is a string or chat messages; other columns go to reward modules',
  },
  per_device_train_batch_size: {
    ...COMMON_OPTIONS.per_device_train_batch_size,
    help: 'completions (not prompts) per micro-batch, as TRL; per_device_train_batch_size x gradient_accumulation_steps must be a multiple of num_generations',
  },
  max_completion_length: { type: 'int', default: 512, help: 'most tokens sampled per completion' },
  temperature: {
    type: 'number',
    default: 1,
    help: 'sampling temperature; the log-probs of the loss use the same temperature (logits / temperature), as TRL',
  },
  top_p: {
    type: 'number',
    default: 1,
    help: 'nucleus sampling: keep the smallest set of tokens reaching this probability (1 = off)',
  },
  top_k: { type: 'int', default: 0, help: 'keep the k most likely tokens when sampling (0 = off)' },
  epsilon: { type: 'number', default: 0.2, help: 'clipping: the ratio is clipped to [1 - epsilon, 1 + epsilon_high]' },
  epsilon_high: {
    type: 'number',
    default: -1,
    help: 'upper clipping bound (-1 = epsilon; TRL None); DAPO recommends 0.28',
  },
  num_iterations: {
    type: 'int',
    default: 1,
    help: 'optimisation passes over each batch of completions (mu in the GRPO paper); > 1 clips against the sampling policy',
  },
  reward_funcs: {
    type: 'list',
    default: ['sentiment'],
    help:
      "rewards, summed with reward_weights: 'sentiment' (the demo's AFINN reward of the completion), " +
      'a reward model folder (*ForSequenceClassification; the score of prompt + completion), ' +
      'or a .js/.mjs module whose default export is (prompts, completions, extra) => number[] ' +
      "(extra: completion_ids and the dataset's other columns, one value per completion)",
  },
  reward_weights: { type: 'list', default: [], help: 'weight of each reward function (default 1 each)' },
  mask_truncated_completions: {
    type: 'bool',
    default: false,
    help: 'completions that reach max_completion_length without EOS count in no loss (their mask is zeroed, as TRL)',
  },
  disable_dropout: {
    type: 'bool',
    default: true,
    help: 'no LoRA dropout while training (tsdpo models have no other dropout)',
  },
} as const satisfies Record<string, OptionSpec>;

/** `tsdpo grpo` (GRPOConfig). */
export const GRPO_OPTIONS = {
  ...trainingOptions(),
  ...ROLLOUT_OPTIONS,
  num_generations: { type: 'int', default: 8, help: 'completions sampled per prompt (a group); at least 2' },
  beta: {
    type: 'number',
    default: 0,
    help: 'weight of the k3 KL estimate to the reference (the initial model) added per token; 0 = no reference model',
  },
  loss_type: {
    type: 'string',
    default: 'dapo',
    choices: ['grpo', 'bnpo', 'dr_grpo', 'dapo'],
    help:
      'how per-token losses are averaged: grpo per sequence then over sequences, bnpo over the micro-batch tokens, ' +
      'dr_grpo over batch x max_completion_length, dapo over the generation batch tokens',
  },
  scale_rewards: {
    type: 'string',
    default: 'group',
    choices: ['group', 'batch', 'none'],
    help: "advantage = reward - group mean, divided by the group's std (group), the batch's std (batch) or nothing (none, Dr. GRPO)",
  },
} as const satisfies Record<string, OptionSpec>;

/** `tsdpo rloo` (RLOOConfig). */
export const RLOO_OPTIONS = {
  ...trainingOptions(),
  ...ROLLOUT_OPTIONS,
  num_generations: {
    type: 'int',
    default: 2,
    help: "completions sampled per prompt; each one's baseline is the mean reward of the others (leave-one-out); at least 2",
  },
  beta: {
    type: 'number',
    default: 0.05,
    help: 'KL penalty folded into the reward: reward - beta * sum over tokens of (log pi_old - log pi_ref)',
  },
  normalize_advantages: {
    type: 'bool',
    default: false,
    help: 'standardise the advantages over the batch (mean 0, std 1)',
  },
  reward_clip_range: {
    type: 'list',
    default: [],
    help: 'min,max to clip the summed reward to before the KL penalty (none = no clipping)',
  },
} as const satisfies Record<string, OptionSpec>;

export type GrpoConfig = ConfigOf<typeof GRPO_OPTIONS>;
export type RlooConfig = ConfigOf<typeof RLOO_OPTIONS>;
/** What the rollout / objective code reads from either config (the run fills the shared options left out). */
export type RlConfig = CommonConfig &
  ConfigOf<typeof ROLLOUT_OPTIONS> & {
    num_generations: number;
    beta: number;
    loss_type?: string;
    scale_rewards?: string;
    normalize_advantages?: boolean;
    reward_clip_range?: string[];
  };
