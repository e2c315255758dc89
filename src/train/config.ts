// Training configuration with TRL's names (DPOConfig / SFTConfig / TrainingArguments, and
// ModelConfig for LoRA). Every option is documented once, here, on its default; the CLI builds
// its flags and --help from this table, and a --config YAML/JSON file may set any of them.
// Precedence: command-line flags > config file > these defaults.
import { F_DIVERGENCES, LOSS_NAMES, LOSSES, TRL_LOSSES } from './losses.js';

/**
 * An option's kind: a number, a whole number, text, true/false, a comma-separated list, or texts given one by one
 * (`--prompt a b`).
 */
export type OptionType = 'number' | 'int' | 'string' | 'bool' | 'list' | 'strings';

/** One option of a table: its type, default, help text and allowed values. */
export interface OptionSpec {
  type: OptionType;
  default: unknown;
  help: string;
  /** The values a string option takes (they become its TypeScript type, a union of these). */
  choices?: readonly string[];
  /** A short flag name users may type instead (e.g. --model for --model_name_or_path). */
  alias?: string;
  /** The smallest value a number takes. */
  min?: number;
  /** The command stops unless the option is given. */
  required?: boolean;
}

/** Where to run: the one definition of --device, shared by every command. */
export const DEVICE_OPTION = {
  type: 'string',
  default: 'auto',
  choices: ['auto', 'cpu', 'webgpu'],
  help: 'where to run: the GPU through WebGPU when available, else the CPU',
} as const satisfies OptionSpec;

/** Options shared by `tsdpo dpo` and `tsdpo sft`. */
export const COMMON_OPTIONS = {
  model_name_or_path: {
    type: 'string',
    default: '',
    alias: 'model',
    help: 'local Hugging Face model folder (config.json + safetensors) to start from',
  },
  dataset: {
    type: 'string',
    default: '',
    alias: 'data',
    help: 'training data: a .jsonl / .json / .parquet file or a folder with train/test files',
  },
  eval_dataset: {
    type: 'string',
    default: '',
    help: 'held-out data (file or folder); default: the test split of --data when it is a folder',
  },
  output_dir: {
    type: 'string',
    default: '',
    alias: 'output',
    help: 'where checkpoints, metrics.jsonl and the final model go',
  },
  overwrite_output_dir: {
    type: 'bool',
    default: false,
    alias: 'overwrite',
    help: 'replace an output folder that already holds a run',
  },
  resume_from_checkpoint: {
    type: 'bool',
    default: false,
    alias: 'resume',
    help: 'continue the run in output_dir from its latest checkpoint',
  },
  learning_rate: { type: 'number', default: 1e-6, help: 'peak learning rate' },
  lr_scheduler_type: {
    type: 'string',
    default: 'linear',
    choices: ['constant', 'constant_with_warmup', 'linear', 'cosine'],
    help: 'learning-rate schedule after warmup',
  },
  warmup_ratio: { type: 'number', default: 0, help: 'fraction of the steps spent warming up linearly from 0' },
  warmup_steps: { type: 'int', default: 0, help: 'warmup steps (overrides warmup_ratio when > 0)' },
  num_train_epochs: { type: 'number', default: 3, help: 'passes over the training data (ignored when max_steps > 0)' },
  max_steps: { type: 'int', default: -1, help: 'optimizer steps to run (> 0 overrides num_train_epochs)' },
  per_device_train_batch_size: {
    type: 'int',
    default: 8,
    alias: 'batch_size',
    help: 'examples (pairs) per micro-batch',
  },
  per_device_eval_batch_size: { type: 'int', default: 8, help: 'examples per evaluation batch' },
  gradient_accumulation_steps: { type: 'int', default: 1, help: 'micro-batches per optimizer step' },
  max_length: { type: 'int', default: 1024, help: 'longest prompt + completion in tokens' },
  max_prompt_length: {
    type: 'int',
    default: 0,
    help: 'tsdpo-only (TRL 1.13 dropped it): cut prompts to this many tokens first, keeping their end (0 = no limit)',
  },
  max_completion_length: {
    type: 'int',
    default: 0,
    help: 'tsdpo-only: cut completions to this many tokens (0 = no limit)',
  },
  truncation_mode: {
    type: 'string',
    default: 'keep_start',
    choices: ['keep_end', 'keep_start'],
    help:
      'which end of a prompt + completion longer than max_length ' +
      'to keep (TRL 1.13: keep_start; keep_end is deprecated there)',
  },
  optim: {
    type: 'string',
    default: 'adamw',
    choices: ['adamw', 'adamw_torch', 'rmsprop', 'sgd'],
    help: 'optimizer (torch semantics)',
  },
  weight_decay: { type: 'number', default: 0, help: 'decoupled weight decay (AdamW) or L2 penalty (RMSprop, SGD)' },
  adam_beta1: { type: 'number', default: 0.9, help: 'AdamW beta1' },
  adam_beta2: { type: 'number', default: 0.999, help: 'AdamW beta2' },
  adam_epsilon: { type: 'number', default: 1e-8, help: 'AdamW / RMSprop epsilon' },
  max_grad_norm: { type: 'number', default: 1, help: 'clip the global gradient norm to this (0 = no clipping)' },
  seed: { type: 'int', default: 42, help: 'seed of data order, LoRA init and dropout' },
  data_seed: {
    type: 'int',
    default: -1,
    help: 'seed of the data order alone (-1 = seed), as TrainingArguments.data_seed',
  },
  logging_steps: { type: 'int', default: 10, help: 'write averaged metrics every this many steps' },
  eval_steps: {
    type: 'int',
    default: 0,
    help: 'evaluate every this many steps (0 = at logging_steps when eval data exists)',
  },
  save_steps: { type: 'int', default: 500, help: 'write a checkpoint every this many steps (0 = only at the end)' },
  save_total_limit: { type: 'int', default: 0, help: 'keep only the newest N checkpoints (0 = keep all)' },
  use_peft: {
    type: 'bool',
    default: false,
    alias: 'lora',
    help: 'train a LoRA adapter instead of all weights (the reference is the base model)',
  },
  lora_r: { type: 'int', default: 16, help: 'LoRA rank' },
  lora_alpha: { type: 'number', default: 32, help: 'LoRA alpha (scaling alpha / r)' },
  lora_dropout: { type: 'number', default: 0.05, help: 'dropout on the LoRA input during training' },
  lora_target_modules: {
    type: 'list',
    default: [],
    help:
      "modules the adapter targets (names or 'all-linear'); none: PEFT's default for the " +
      'model_type (gpt2: c_attn; llama, mistral, qwen2, qwen3, gemma3_text: q_proj,v_proj)',
  },
  adapter: { type: 'string', default: '', help: 'start from this PEFT adapter folder (implies use_peft)' },
  skip_invalid: { type: 'bool', default: false, help: 'skip and count malformed rows instead of stopping' },
  prompt_column: {
    type: 'string',
    default: 'prompt',
    help:
      'column holding the prompt (rows without one: the prompt is the shared start of ' +
      'chosen and rejected, or the Anthropic HH dialogue up to the last Assistant turn)',
  },
  chosen_column: { type: 'string', default: 'chosen', help: 'column holding the preferred completion' },
  rejected_column: { type: 'string', default: 'rejected', help: 'column holding the dispreferred completion' },
  gradient_checkpointing: {
    type: 'bool',
    default: false,
    help:
      "recompute each layer's activations in backward instead of keeping them: same numbers, far less " +
      'activation memory, ~1/3 more compute (TRL 1.13 defaults to true; tsdpo to false, see docs/memory.md)',
  },
  frozen_dtype: {
    type: 'string',
    default: 'float32',
    choices: ['float32', 'bfloat16'],
    help:
      'tsdpo-only: bfloat16 keeps the weight matrices of models that do not train (the reference, a LoRA ' +
      'base) in 16 bits, as the checkpoint stores them (other checkpoints are rounded), computing in float32: ' +
      'half their memory; trained weights, gradients and optimizer state stay float32 (see docs/memory.md)',
  },
  memory_report: {
    type: 'bool',
    default: false,
    help:
      'log the peak memory after the first step and at the end, split ' +
      'into weights, gradients, optimizer state, logits and activations',
  },
  device: DEVICE_OPTION,
  threads: { type: 'int', default: 0, help: 'CPU threads (0 = all cores)' },
  config: { type: 'string', default: '', help: 'YAML or JSON file with any of these options' },
} as const satisfies Record<string, OptionSpec>;

/** Options only `tsdpo dpo` has. */
export const DPO_OPTIONS = {
  beta: {
    type: 'number',
    default: 0.1,
    help: 'KL strength: higher stays closer to the reference (Eq. 7, arXiv:2305.18290); for ipo its tau',
  },
  loss_type: {
    type: 'list',
    default: ['sigmoid'],
    help:
      `loss(es), as TRL 1.13: ${TRL_LOSSES.join(', ')}; tsdpo-only: ` +
      `${LOSS_NAMES.filter((n) => !LOSSES[n].trl).join(', ')}. Several are summed with loss_weights`,
  },
  loss_weights: {
    type: 'list',
    default: [],
    help: 'weight of each loss_type (default 1 each); e.g. loss_type sigmoid,sft with loss_weights 1,0.5 is RPO',
  },
  label_smoothing: {
    type: 'number',
    default: 0,
    help:
      'label-flip probability for robust, aot, aot_unpaired; ' +
      'EXO epsilon for exo_pair (sigmoid ignores it, as TRL 1.13)',
  },
  f_divergence_type: {
    type: 'string',
    default: 'reverse_kl',
    choices: F_DIVERGENCES,
    help: 'f-DPO regulariser (arXiv:2309.16240) for the losses built on the log-ratio difference',
  },
  f_alpha_divergence_coef: { type: 'number', default: 0.5, help: 'alpha of f_divergence_type alpha_divergence' },
  discopop_tau: { type: 'number', default: 0.05, help: 'temperature of the discopop loss' },
  use_weighting: {
    type: 'bool',
    default: false,
    help: "weight each pair by the policy's length-normalised probabilities (WPO, arXiv:2406.11827)",
  },
  ld_alpha: {
    type: 'number',
    default: -1,
    help:
      'LD-DPO (arXiv:2409.06411): weight of completion tokens past ' +
      'the shorter completion of the pair; -1 = off (TRL None)',
  },
  simpo_gamma: { type: 'number', default: 0.5, help: 'tsdpo-only: target margin of the simpo loss' },
  rpo_alpha: {
    type: 'number',
    default: 0,
    help: 'not in TRL 1.13 (accepted with a notice): adds loss_type sft with this weight; 0 = off',
  },
  ref_model: {
    type: 'string',
    default: '',
    help:
      'reference model folder (default: a frozen copy of --model; with a new LoRA ' +
      'adapter the base model, with --adapter a frozen copy of that adapter, as TRL 1.13)',
  },
  sync_ref_model: {
    type: 'bool',
    default: false,
    help:
      'TR-DPO (arXiv:2404.09656): every ref_model_sync_steps mix the policy ' +
      'into the reference model (not with LoRA or precompute_ref_log_probs)',
  },
  ref_model_mixup_alpha: {
    type: 'number',
    default: 0.6,
    help: 'TR-DPO: reference = alpha * policy + (1 - alpha) * reference at each sync',
  },
  ref_model_sync_steps: { type: 'int', default: 512, help: 'TR-DPO: steps between syncs' },
  disable_dropout: {
    type: 'bool',
    default: true,
    help: 'no dropout in the policy and the reference (TRL default); false keeps lora_dropout while training',
  },
  precompute_ref_log_probs: {
    type: 'bool',
    default: false,
    help: 'compute reference log-probs in one pass before training and cache them on disk',
  },
  precompute_ref_batch_size: {
    type: 'int',
    default: 0,
    help:
      'batch size of that pass (0 = per_device_train_batch_size ' +
      'for training data, per_device_eval_batch_size for eval data)',
  },
  shard: {
    type: 'string',
    default: '',
    help:
      'i/n: compute part i of n of that pass (whole batches), write it beside the cache and stop ' +
      'before training; a run without --shard merges the n parts (a job array: README, Scaling out)',
  },
  padding_free: {
    type: 'bool',
    default: false,
    help: "accepted with a notice: TRL 1.13's DPOTrainer falls back to padding, and so does tsdpo",
  },
  pad_to_multiple_of: {
    type: 'int',
    default: 0,
    help: 'pad each micro-batch to a multiple of this many tokens (0 = off; the numbers do not change)',
  },
  completion_only_head: {
    type: 'bool',
    default: true,
    help: 'run the LM head only on completion positions (same numbers, less work)',
  },
  share_prompt: {
    type: 'bool',
    default: false,
    help: "compute each pair's prompt once for its chosen and rejected completions (same numbers, less work)",
  },
} as const satisfies Record<string, OptionSpec>;

/** Options only `tsdpo sft` has. */
export const SFT_OPTIONS = {
  completion_only_loss: { type: 'bool', default: true, help: 'prompt/completion data: loss on completion tokens only' },
  assistant_only_loss: {
    type: 'bool',
    default: false,
    help: "conversational rows: loss only on the assistant's tokens, the {% generation %} blocks of the chat template",
  },
  dataset_text_field: {
    type: 'string',
    default: 'text',
    help: 'column holding plain-text rows (language modelling on every token)',
  },
  chat_template_path: {
    type: 'string',
    default: '',
    help: "a .jinja / .j2 file: the chat template for the data (instead of the model's), saved with the trained model",
  },
  loss_type: {
    type: 'string',
    default: 'chunked_nll',
    choices: ['chunked_nll', 'nll', 'dft'],
    help:
      'chunked_nll and nll: mean negative log-likelihood (the same numbers; tsdpo always runs the LM head on loss ' +
      'positions only); dft: each token weighted by its detached probability (Dynamic Fine-Tuning, ' +
      'arXiv:2508.05629)',
  },
  packing: {
    type: 'bool',
    default: false,
    help:
      'pack sequences into rows of max_length tokens ' +
      '(packing_strategy); packed sequences attend only within themselves',
  },
  packing_strategy: {
    type: 'string',
    default: 'bfd',
    choices: ['bfd', 'bfd_split', 'wrapped'],
    help:
      'bfd: best-fit decreasing, longer sequences cut; bfd_split: longer ones split; ' +
      'wrapped: all tokens end to end, cut every max_length (attention crosses examples)',
  },
  eval_packing: {
    type: 'string',
    default: '',
    choices: ['', 'true', 'false'],
    help: 'pack the eval data too: true or false (empty: as packing)',
  },
  padding_free: {
    type: 'bool',
    default: false,
    help:
      'a micro-batch as one row of sequences, each attending only within itself with ' +
      'positions from 0 (TRL; bfd packing turns it on); without packing it needs max_length 0',
  },
  pad_to_multiple_of: {
    type: 'int',
    default: 0,
    help: 'pad each micro-batch to a multiple of this many tokens (0 = off); counts in num_tokens with padding_free',
  },
  eos_token: {
    type: 'string',
    default: '',
    help: "token that ends text rows and completions (empty: the tokenizer's EOS)",
  },
  pad_token: {
    type: 'string',
    default: '',
    help:
      "padding token, deprecated in TRL 1.13 (empty: the tokenizer's " +
      'pad token, else EOS); padding never changes the numbers',
  },
  shuffle_dataset: {
    type: 'bool',
    default: false,
    help:
      'shuffle the prepared rows once with the seed (before packing, ' +
      "and the packed rows again), in datasets' numpy order as TRL",
  },
  activation_offloading: {
    type: 'bool',
    default: false,
    help: 'accepted with a notice: no effect in tsdpo (use gradient_checkpointing)',
  },
  dataset_num_proc: {
    type: 'int',
    default: 0,
    help: 'accepted with a notice: no effect in tsdpo (tokenizes in one process)',
  },
} as const satisfies Record<string, OptionSpec>;

/** Every option of `tsdpo dpo` (COMMON_OPTIONS and DPO_OPTIONS). */
export const DPO_SPECS = { ...COMMON_OPTIONS, ...DPO_OPTIONS };
/** Every option of `tsdpo sft`: TRL's SFTConfig has its own learning_rate default, 2e-5. */
export const SFT_SPECS = {
  ...COMMON_OPTIONS,
  ...SFT_OPTIONS,
  learning_rate: { ...COMMON_OPTIONS.learning_rate, default: 2e-5 },
};

/** The TypeScript type of an option's value; a string option with choices is the union of its choices. */
export type ValueOf<S extends OptionSpec> = S['type'] extends 'number' | 'int'
  ? number
  : S['type'] extends 'bool'
    ? boolean
    : S['type'] extends 'list' | 'strings'
      ? string[]
      : S extends { choices: readonly (infer C extends string)[] }
        ? C
        : string;
/** The configuration an option table describes: one typed field per option. */
export type ConfigOf<T extends Record<string, OptionSpec>> = { -readonly [K in keyof T]: ValueOf<T[K]> };

/**
 * The options every trainer shares (TrainingArguments' names, ModelConfig's LoRA options, tsdpo's data and device
 * options).
 */
export type CommonConfig = ConfigOf<typeof COMMON_OPTIONS>;
/** `tsdpo dpo`'s configuration: TRL 1.13's DPOConfig names (see DPO_OPTIONS for each option's help). */
export type DpoConfig = CommonConfig & ConfigOf<typeof DPO_OPTIONS>;
/** `tsdpo sft`'s configuration: TRL 1.13's SFTConfig names. */
export type SftConfig = CommonConfig & ConfigOf<typeof SFT_OPTIONS>;

export function defaultsOf<T extends Record<string, OptionSpec>>(specs: T): ConfigOf<T> {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(specs)) out[k] = Array.isArray(s.default) ? [...s.default] : s.default;
  return out as ConfigOf<T>;
}

/** Converts a value from a flag or a config file to the option's type; throws naming the option. */
export function coerce(key: string, spec: OptionSpec, value: unknown, where: string): unknown {
  const bad = (): never => {
    throw new Error(
      `${where}: option ${key} expects ` +
        `${spec.type}${spec.choices ? ` (${spec.choices.join(', ')})` : ''}, got ${JSON.stringify(value)}`,
    );
  };
  let v: unknown = value;
  switch (spec.type) {
    case 'number':
    case 'int': {
      v = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      const whole = spec.type === 'int';
      if (spec.min !== undefined && !(typeof v === 'number' && (!whole || Number.isInteger(v)) && v >= spec.min)) {
        const what = `must be a ${whole ? 'whole number' : 'number'} >= ${spec.min}, got '${String(value)}'`;
        throw new Error(where === 'command line' ? `--${key} ${what}` : `${where}: option ${key} ${what}`);
      }
      if (typeof v !== 'number' || !Number.isFinite(v) || (whole && !Number.isInteger(v))) bad();
      break;
    }
    case 'strings':
      if (typeof value === 'string') v = [value];
      else if (Array.isArray(value) && value.every((x) => typeof x === 'string')) v = [...value];
      else bad();
      break;
    case 'bool':
      if (typeof value === 'string')
        v = ['true', '1', 'yes'].includes(value.toLowerCase())
          ? true
          : ['false', '0', 'no'].includes(value.toLowerCase())
            ? false
            : bad();
      else if (typeof value !== 'boolean') bad();
      break;
    case 'list':
      if (typeof value === 'string')
        v = value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0);
      else if (Array.isArray(value)) v = value.map(String);
      else bad();
      break;
    case 'string':
      if (typeof value !== 'string') bad();
      break;
  }
  if (spec.choices && typeof v === 'string' && !spec.choices.includes(v)) bad();
  return v;
}
