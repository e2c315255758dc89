// The options of `tsdpo generate`, `tsdpo logprobs` and `tsdpo eval`, documented once, here, on their
// defaults (the CLI builds flags and --help from these tables, as for the trainers in train/config.ts).
import { DEVICE_OPTION, type ConfigOf, type OptionSpec } from '../train/config.js';

/** `tsdpo generate`: continuations of prompts (transformers' GenerationConfig names). */
export const GENERATE_OPTIONS = {
  model: { type: 'string', default: '', required: true, help: 'Hugging Face model folder (with tokenizer files)' },
  prompt: { type: 'strings', default: [], required: true, help: 'prompt(s)' },
  adapter: { type: 'string', default: '', help: 'PEFT LoRA adapter folder' },
  max_new_tokens: { type: 'int', default: 32, min: 1, help: 'tokens to generate' },
  do_sample: { type: 'bool', default: false, help: 'sample instead of greedy decoding' },
  temperature: { type: 'number', default: 1, help: 'sampling temperature' },
  top_k: { type: 'int', default: 0, min: 0, help: 'keep the k most likely tokens (0 = off)' },
  top_p: { type: 'number', default: 1, help: 'nucleus sampling mass (1 = off)' },
  seed: { type: 'int', default: 0, help: 'sampling seed' },
  chat: { type: 'bool', default: false, help: 'wrap each prompt in the chat template as a user message' },
  device: DEVICE_OPTION,
} as const satisfies Record<string, OptionSpec>;

/** `tsdpo logprobs`: summed completion log-probs of sequences or preference pairs. */
export const LOGPROBS_OPTIONS = {
  model: { type: 'string', default: '', required: true, help: 'Hugging Face model folder' },
  input: { type: 'string', default: '', required: true, help: 'JSONL sequences, or preference data (file or folder)' },
  adapter: { type: 'string', default: '', help: 'PEFT LoRA adapter folder' },
  reference: {
    type: 'string',
    default: '',
    help: 'preference data: reference model folder for the margin (default with --adapter: the base model)',
  },
  device: DEVICE_OPTION,
  batch_size: { type: 'int', default: 8, min: 1, help: 'sequences (pairs) per forward pass' },
} as const satisfies Record<string, OptionSpec>;

/** `tsdpo eval`: a policy against its reference on prompts, judged by a reward. */
export const EVAL_OPTIONS = {
  model: {
    type: 'string',
    default: '',
    required: true,
    help: 'the policy: a Hugging Face model folder (with tokenizer files)',
  },
  adapter: {
    type: 'string',
    default: '',
    help: 'PEFT LoRA adapter on --model (then the reference defaults to --model without it)',
  },
  reference: {
    type: 'string',
    default: '',
    help: 'the reference: the model before training (required without --adapter)',
  },
  prompts: {
    type: 'string',
    default: '',
    required: true,
    help: '.txt (one prompt per line), or .jsonl / .json / .parquet rows',
  },
  prompt_field: {
    type: 'string',
    default: 'prompt',
    help: 'field of the prompt in .jsonl / .json / .parquet rows (text or chat messages)',
  },
  reward: {
    type: 'string',
    default: 'sentiment',
    help:
      "'sentiment' (sigmoid of the AFINN score / 2 of the completion), a reward model folder " +
      '(*ForSequenceClassification: its score of prompt + completion; ' +
      'what `tsdpo reward` saves, a LoRA adapter included), ' +
      'or a .mjs/.js module exporting (prompt, completion) => number (default export or `reward`)',
  },
  reward_label: {
    type: 'string',
    default: '',
    help:
      'a reward model with several labels (a classifier): the ' +
      'label (name or index) whose probability is the reward',
  },
  samples: { type: 'int', default: 4, min: 1, help: 'completions per prompt from each model' },
  max_new_tokens: { type: 'int', default: 32, min: 1, help: 'tokens per completion' },
  temperature: {
    type: 'list',
    default: ['1'],
    help:
      "sampling temperature, or several (0.25,0.5,1: win rate against temperature, the paper's " +
      "Fig. 2 right); KL is estimated only at 1, the models' own distributions",
  },
  seed: { type: 'int', default: 0, help: 'sampling seed' },
  batch_size: { type: 'int', default: 32, min: 1, help: 'sequences generated together' },
  chat: { type: 'bool', default: false, help: 'wrap text prompts in the chat template as a user message' },
  output: {
    type: 'string',
    default: '',
    help: 'also write every sample as JSON lines (prompt, model, temperature, completion, reward)',
  },
  json: {
    type: 'bool',
    default: false,
    help: 'print one JSON line of results (per temperature) instead of the text summary',
  },
  shard: {
    type: 'string',
    default: '',
    help:
      'i/n: evaluate part i of n of the prompts and write it to --output (no summary); ' +
      "`tsdpo merge-shards` merges the n files into the whole run's result",
  },
  device: DEVICE_OPTION,
} as const satisfies Record<string, OptionSpec>;

/** `tsdpo generate`'s configuration. */
export type GenerateConfig = ConfigOf<typeof GENERATE_OPTIONS>;
/** `tsdpo logprobs`'s configuration. */
export type LogprobsConfig = ConfigOf<typeof LOGPROBS_OPTIONS>;
/** `tsdpo eval`'s configuration. */
export type EvalConfig = ConfigOf<typeof EVAL_OPTIONS>;
