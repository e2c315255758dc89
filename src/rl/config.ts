// `tsdpo ppo`'s own options, with TRL 0.28's PPOConfig names and defaults (trl/experimental/ppo/
// ppo_config.py), plus the legacy adaptive KL controller of TRL <= 0.11 (the DPO paper's PPO) and
// the reward choice. The shared options (model, data, optimizer, schedule, LoRA) are COMMON_OPTIONS.
import { COMMON_OPTIONS, type CommonConfig, type ConfigOf, type OptionSpec } from '../train/config.js';

export const PPO_OPTIONS = {
  reward: {
    type: 'string',
    default: '',
    help:
      "the reward: a *ForSequenceClassification folder (TRL's reward model; its score at EOS; " +
      "the value model starts from it), 'sentiment' or a .mjs/.js module exporting (prompt, completion) => number " +
      "(then the value model starts from the policy's backbone with a zero value head)",
  },
  value_model: {
    type: 'string',
    default: '',
    help:
      'value model folder (*ForSequenceClassification; default: the --reward folder, as TRL examples; ' +
      'with a function reward: the policy backbone + a zero head)',
  },
  ref_model: {
    type: 'string',
    default: '',
    help: 'reference model folder (default: a frozen copy of --model; with LoRA the base model, adapter off)',
  },
  prompt_field: {
    type: 'string',
    default: 'prompt',
    help: 'field of the prompt in .jsonl / .json / .parquet rows (text or chat messages); a .txt file holds one prompt per line',
  },
  response_length: { type: 'int', default: 53, help: 'tokens sampled per response (max_new_tokens)' },
  temperature: {
    type: 'number',
    default: 0.7,
    help: 'sampling temperature; log-probs use logits / (temperature + 1e-7), as TRL',
  },
  stop_token: {
    type: 'string',
    default: '',
    choices: ['', 'eos'],
    help: "'eos': stop sampling at EOS and truncate responses after it (TRL stop_token); empty: sample response_length tokens",
  },
  missing_eos_penalty: {
    type: 'number',
    default: -1,
    help: 'subtracted from the score of responses without EOS (-1 = off, TRL None)',
  },
  pad_token_id: {
    type: 'int',
    default: -1,
    help:
      "the padding id (-1 = the tokenizer's pad token). It must differ from EOS: pad marks the end of a response. " +
      'It never reaches the model (padded ids are fed as 0), so the vocabulary size is a valid choice',
  },
  num_ppo_epochs: { type: 'int', default: 4, help: 'passes of PPO updates over each batch of rollouts' },
  num_mini_batches: {
    type: 'int',
    default: 1,
    help: 'mini-batches per PPO epoch (the batch, per_device_train_batch_size x gradient_accumulation_steps, must divide by it)',
  },
  total_episodes: { type: 'int', default: 0, help: 'rollouts to train on in all (0 = num_train_epochs x prompts)' },
  local_rollout_forward_batch_size: {
    type: 'int',
    default: 64,
    help: 'rows sampled and scored together (no gradient)',
  },
  whiten_rewards: {
    type: 'bool',
    default: false,
    help: 'whiten the per-token rewards over the valid tokens (mean kept)',
  },
  kl_coef: { type: 'number', default: 0.05, help: 'KL penalty coefficient per token' },
  kl_estimator: {
    type: 'string',
    default: 'k1',
    choices: ['k1', 'k3'],
    help: 'per-token KL estimate: k1 = log pi - log ref; k3 = (r - 1) - log r, r = ref / pi',
  },
  cliprange: { type: 'number', default: 0.2, help: 'policy ratio clip range' },
  cliprange_value: { type: 'number', default: 0.2, help: 'value clip range around the rollout values' },
  vf_coef: { type: 'number', default: 0.1, help: 'weight of the value loss' },
  gamma: { type: 'number', default: 1, help: 'GAE discount' },
  lam: { type: 'number', default: 0.95, help: 'GAE lambda' },
  adap_kl_ctrl: {
    type: 'bool',
    default: false,
    help: "legacy adaptive KL coefficient (TRL <= 0.11, the DPO paper's PPO): starts at init_kl_coef, moves towards target",
  },
  init_kl_coef: { type: 'number', default: 0.2, help: 'starting KL coefficient with adap_kl_ctrl' },
  target: { type: 'number', default: 6, help: 'target KL (nats per response) of adap_kl_ctrl' },
  horizon: { type: 'number', default: 10000, help: 'horizon of adap_kl_ctrl (rollouts)' },
  save_value: {
    type: 'bool',
    default: false,
    help: 'also write the value model (OUTPUT/value_model, a *ForSequenceClassification folder)',
  },
  chat: { type: 'bool', default: false, help: 'wrap text prompts in the chat template as a user message' },
} as const satisfies Record<string, OptionSpec>;

/** COMMON_OPTIONS that PPO does not use (TRL's PPOTrainer has no gradient clipping, evaluation set or preference columns). */
const NOT_PPO = new Set([
  'eval_dataset',
  'resume_from_checkpoint',
  'per_device_eval_batch_size',
  'max_length',
  'max_prompt_length',
  'max_completion_length',
  'truncation_mode',
  'max_grad_norm',
  'eval_steps',
  'save_steps',
  'save_total_limit',
  'skip_invalid',
  'prompt_column',
  'chosen_column',
  'rejected_column',
  'logging_steps',
]);

/** The flags of `tsdpo ppo`: the shared options PPO uses (TrainingArguments' learning rate default, as TRL) and PPO_OPTIONS. */
export const PPO_SPECS = {
  ...Object.fromEntries(Object.entries(COMMON_OPTIONS).filter(([k]) => !NOT_PPO.has(k))),
  learning_rate: { ...COMMON_OPTIONS.learning_rate, default: 5e-5 },
  output_dir: {
    ...COMMON_OPTIONS.output_dir,
    help: 'where metrics.jsonl, the trained policy (and with save_value value_model/) go (PPO writes no intermediate checkpoints)',
  },
  dataset: {
    ...COMMON_OPTIONS.dataset,
    help: 'prompts: a .txt file (one per line) or .jsonl / .json / .parquet rows with a prompt field',
  },
  per_device_train_batch_size: {
    ...COMMON_OPTIONS.per_device_train_batch_size,
    help: 'rollouts per micro-batch of the PPO update',
  },
  ...PPO_OPTIONS,
} as Record<string, OptionSpec>;

export type PpoConfig = CommonConfig & ConfigOf<typeof PPO_OPTIONS>;
