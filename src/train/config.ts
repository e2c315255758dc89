// Training configuration with TRL's names (DPOConfig / SFTConfig / TrainingArguments, and
// ModelConfig for LoRA). Every option is documented once, here, on its default; the CLI builds
// its flags and --help from this table, and a --config YAML/JSON file may set any of them.
// Precedence: command-line flags > config file > these defaults.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

export type OptionType = 'number' | 'int' | 'string' | 'bool' | 'list';

export interface OptionSpec {
  type: OptionType;
  default: unknown;
  help: string;
  choices?: readonly string[];
  /** A short flag name users may type instead (e.g. --model for --model_name_or_path). */
  alias?: string;
}

/** Options shared by `tsdpo dpo` and `tsdpo sft`. */
export const COMMON_OPTIONS = {
  model_name_or_path: { type: 'string', default: '', alias: 'model', help: 'local Hugging Face model folder (config.json + safetensors) to start from' },
  dataset: { type: 'string', default: '', alias: 'data', help: 'training data: a .jsonl / .json / .parquet file or a folder with train/test files' },
  eval_dataset: { type: 'string', default: '', help: 'held-out data (file or folder); default: the test split of --data when it is a folder' },
  output_dir: { type: 'string', default: '', alias: 'output', help: 'where checkpoints, metrics.jsonl and the final model go' },
  overwrite_output_dir: { type: 'bool', default: false, alias: 'overwrite', help: 'replace an output folder that already holds a run' },
  resume_from_checkpoint: { type: 'bool', default: false, alias: 'resume', help: 'continue the run in output_dir from its latest checkpoint' },
  learning_rate: { type: 'number', default: 1e-6, help: 'peak learning rate' },
  lr_scheduler_type: { type: 'string', default: 'linear', choices: ['constant', 'constant_with_warmup', 'linear', 'cosine'], help: 'learning-rate schedule after warmup' },
  warmup_ratio: { type: 'number', default: 0, help: 'fraction of the steps spent warming up linearly from 0' },
  warmup_steps: { type: 'int', default: 0, help: 'warmup steps (overrides warmup_ratio when > 0)' },
  num_train_epochs: { type: 'number', default: 3, help: 'passes over the training data (ignored when max_steps > 0)' },
  max_steps: { type: 'int', default: -1, help: 'optimizer steps to run (> 0 overrides num_train_epochs)' },
  per_device_train_batch_size: { type: 'int', default: 8, alias: 'batch_size', help: 'examples (pairs) per micro-batch' },
  per_device_eval_batch_size: { type: 'int', default: 8, help: 'examples per evaluation batch' },
  gradient_accumulation_steps: { type: 'int', default: 1, help: 'micro-batches per optimizer step' },
  max_length: { type: 'int', default: 1024, help: 'longest prompt + completion in tokens' },
  max_prompt_length: { type: 'int', default: 0, help: 'tsdpo-only (TRL 1.13 dropped it): cut prompts to this many tokens first, keeping their end (0 = no limit)' },
  max_completion_length: { type: 'int', default: 0, help: 'tsdpo-only: cut completions to this many tokens (0 = no limit)' },
  truncation_mode: { type: 'string', default: 'keep_start', choices: ['keep_end', 'keep_start'], help: 'which end of a prompt + completion longer than max_length to keep (TRL 1.13: keep_start; keep_end is deprecated there)' },
  optim: { type: 'string', default: 'adamw', choices: ['adamw', 'adamw_torch', 'rmsprop', 'sgd'], help: 'optimizer (torch semantics)' },
  weight_decay: { type: 'number', default: 0, help: 'decoupled weight decay (AdamW) or L2 penalty (RMSprop, SGD)' },
  adam_beta1: { type: 'number', default: 0.9, help: 'AdamW beta1' },
  adam_beta2: { type: 'number', default: 0.999, help: 'AdamW beta2' },
  adam_epsilon: { type: 'number', default: 1e-8, help: 'AdamW / RMSprop epsilon' },
  max_grad_norm: { type: 'number', default: 1, help: 'clip the global gradient norm to this (0 = no clipping)' },
  seed: { type: 'int', default: 42, help: 'seed of data order, LoRA init and dropout' },
  data_seed: { type: 'int', default: -1, help: 'seed of the data order alone (-1 = seed), as TrainingArguments.data_seed' },
  logging_steps: { type: 'int', default: 10, help: 'write averaged metrics every this many steps' },
  eval_steps: { type: 'int', default: 0, help: 'evaluate every this many steps (0 = at logging_steps when eval data exists)' },
  save_steps: { type: 'int', default: 500, help: 'write a checkpoint every this many steps (0 = only at the end)' },
  save_total_limit: { type: 'int', default: 0, help: 'keep only the newest N checkpoints (0 = keep all)' },
  use_peft: { type: 'bool', default: false, alias: 'lora', help: 'train a LoRA adapter instead of all weights (the reference is the base model)' },
  lora_r: { type: 'int', default: 16, help: 'LoRA rank' },
  lora_alpha: { type: 'number', default: 32, help: 'LoRA alpha (scaling alpha / r)' },
  lora_dropout: { type: 'number', default: 0.05, help: 'dropout on the LoRA input during training' },
  lora_target_modules: { type: 'list', default: [], help: "modules the adapter targets (names or 'all-linear'); none: PEFT's default for the model_type (gpt2: c_attn; llama, mistral, qwen2, qwen3, gemma3_text: q_proj,v_proj)" },
  adapter: { type: 'string', default: '', help: 'start from this PEFT adapter folder (implies use_peft)' },
  skip_invalid: { type: 'bool', default: false, help: 'skip and count malformed rows instead of stopping' },
  prompt_column: { type: 'string', default: 'prompt', help: 'column holding the prompt (rows without one: the prompt is the shared start of chosen and rejected, or the Anthropic HH dialogue up to the last Assistant turn)' },
  chosen_column: { type: 'string', default: 'chosen', help: 'column holding the preferred completion' },
  rejected_column: { type: 'string', default: 'rejected', help: 'column holding the dispreferred completion' },
  gradient_checkpointing: { type: 'bool', default: false, help: "recompute each layer's activations in backward instead of keeping them: same numbers, far less activation memory, ~1/3 more compute (TRL 1.13 defaults to true; tsdpo to false, see docs/memory.md)" },
  frozen_dtype: { type: 'string', default: 'float32', choices: ['float32', 'bfloat16'], help: "tsdpo-only: bfloat16 keeps the weight matrices of models that do not train (the reference, a LoRA base) in 16 bits, as the checkpoint stores them (other checkpoints are rounded), computing in float32: half their memory; trained weights, gradients and optimizer state stay float32 (see docs/memory.md)" },
  memory_report: { type: 'bool', default: false, help: 'log the peak memory after the first step and at the end, split into weights, gradients, optimizer state, logits and activations' },
  device: { type: 'string', default: 'auto', choices: ['auto', 'cpu', 'webgpu'], help: 'where to train: GPU through WebGPU when available, else CPU' },
  threads: { type: 'int', default: 0, help: 'CPU threads (0 = all cores)' },
  config: { type: 'string', default: '', help: 'YAML or JSON file with any of these options' },
} as const satisfies Record<string, OptionSpec>;

/** Options only `tsdpo dpo` has. */
export const DPO_OPTIONS = {
  beta: { type: 'number', default: 0.1, help: 'KL strength: higher stays closer to the reference (Eq. 7, arXiv:2305.18290); for ipo its tau' },
  loss_type: { type: 'list', default: ['sigmoid'], help: 'loss(es), as TRL 1.13: sigmoid, hinge, ipo, exo_pair, nca_pair, robust, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft, sigmoid_norm; tsdpo-only: reference_free, simpo. Several are summed with loss_weights' },
  loss_weights: { type: 'list', default: [], help: 'weight of each loss_type (default 1 each); e.g. loss_type sigmoid,sft with loss_weights 1,0.5 is RPO' },
  label_smoothing: { type: 'number', default: 0, help: 'label-flip probability for robust, aot, aot_unpaired; EXO epsilon for exo_pair (sigmoid ignores it, as TRL 1.13)' },
  f_divergence_type: { type: 'string', default: 'reverse_kl', choices: ['reverse_kl', 'forward_kl', 'js_divergence', 'alpha_divergence'], help: 'f-DPO regulariser (arXiv:2309.16240) for the losses built on the log-ratio difference' },
  f_alpha_divergence_coef: { type: 'number', default: 0.5, help: 'alpha of f_divergence_type alpha_divergence' },
  discopop_tau: { type: 'number', default: 0.05, help: 'temperature of the discopop loss' },
  use_weighting: { type: 'bool', default: false, help: "weight each pair by the policy's length-normalised probabilities (WPO, arXiv:2406.11827)" },
  ld_alpha: { type: 'number', default: -1, help: 'LD-DPO (arXiv:2409.06411): weight of completion tokens past the shorter completion of the pair; -1 = off (TRL None)' },
  simpo_gamma: { type: 'number', default: 0.5, help: 'tsdpo-only: target margin of the simpo loss' },
  rpo_alpha: { type: 'number', default: 0, help: 'not in TRL 1.13 (accepted with a notice): adds loss_type sft with this weight; 0 = off' },
  ref_model: { type: 'string', default: '', help: 'reference model folder (default: a frozen copy of --model; with a new LoRA adapter the base model, with --adapter a frozen copy of that adapter, as TRL 1.13)' },
  sync_ref_model: { type: 'bool', default: false, help: 'TR-DPO (arXiv:2404.09656): every ref_model_sync_steps mix the policy into the reference model (not with LoRA or precompute_ref_log_probs)' },
  ref_model_mixup_alpha: { type: 'number', default: 0.6, help: 'TR-DPO: reference = alpha * policy + (1 - alpha) * reference at each sync' },
  ref_model_sync_steps: { type: 'int', default: 512, help: 'TR-DPO: steps between syncs' },
  disable_dropout: { type: 'bool', default: true, help: 'no dropout in the policy and the reference (TRL default); false keeps lora_dropout while training' },
  precompute_ref_log_probs: { type: 'bool', default: false, help: 'compute reference log-probs in one pass before training and cache them on disk' },
  precompute_ref_batch_size: { type: 'int', default: 0, help: 'batch size of that pass (0 = per_device_train_batch_size for training data, per_device_eval_batch_size for eval data)' },
  completion_only_head: { type: 'bool', default: true, help: 'run the LM head only on completion positions (same numbers, less work)' },
  share_prompt: { type: 'bool', default: false, help: "compute each pair's prompt once for its chosen and rejected completions (same numbers, less work)" },
} as const satisfies Record<string, OptionSpec>;

/** Options only `tsdpo sft` has. */
export const SFT_OPTIONS = {
  completion_only_loss: { type: 'bool', default: true, help: 'prompt/completion data: loss on completion tokens only' },
  dataset_text_field: { type: 'string', default: 'text', help: 'column holding plain-text rows (language modelling on every token)' },
} as const satisfies Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['type'] extends 'number' | 'int' ? number
  : S['type'] extends 'bool' ? boolean : S['type'] extends 'list' ? string[] : string;
export type ConfigOf<T extends Record<string, OptionSpec>> = { -readonly [K in keyof T]: ValueOf<T[K]> };

export type CommonConfig = ConfigOf<typeof COMMON_OPTIONS>;
export type DpoConfig = CommonConfig & ConfigOf<typeof DPO_OPTIONS>;
export type SftConfig = CommonConfig & ConfigOf<typeof SFT_OPTIONS>;

export function defaultsOf<T extends Record<string, OptionSpec>>(specs: T): ConfigOf<T> {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(specs)) out[k] = Array.isArray(s.default) ? [...s.default] : s.default;
  return out as ConfigOf<T>;
}

/** Converts a value from a flag or a config file to the option's type; throws naming the option. */
export function coerce(key: string, spec: OptionSpec, value: unknown, where: string): unknown {
  const bad = (): never => { throw new Error(`${where}: option ${key} expects ${spec.type}${spec.choices ? ` (${spec.choices.join(', ')})` : ''}, got ${JSON.stringify(value)}`); };
  let v: unknown = value;
  switch (spec.type) {
    case 'number':
    case 'int': {
      v = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof v !== 'number' || !Number.isFinite(v) || (spec.type === 'int' && !Number.isInteger(v))) bad();
      break;
    }
    case 'bool':
      if (typeof value === 'string') v = ['true', '1', 'yes'].includes(value.toLowerCase()) ? true : ['false', '0', 'no'].includes(value.toLowerCase()) ? false : bad();
      else if (typeof value !== 'boolean') bad();
      break;
    case 'list':
      if (typeof value === 'string') v = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
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

/** Reads a YAML or JSON config file; unknown keys are errors naming the key. */
export function readConfigFile(path: string, specs: Record<string, OptionSpec>): Record<string, unknown> {
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(`config file ${path}: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`config file ${path}: expected a mapping of option names to values`);
  const out: Record<string, unknown> = {};
  for (const [k, value] of Object.entries(raw as Record<string, unknown>)) {
    const spec = specs[k] ?? Object.entries(specs).find(([, s]) => s.alias === k)?.[1];
    const key = specs[k] ? k : Object.entries(specs).find(([, s]) => s.alias === k)?.[0];
    if (!spec || !key) throw new Error(`config file ${path}: unknown option '${k}' (see --help)`);
    out[key] = coerce(key, spec, value, `config file ${path}`);
  }
  return out;
}
