// The one place that maps config.json's model_type (or architectures) to a model family.
import type { Family } from './family.js';
import { gemma3 } from './gemma3.js';
import { gpt2 } from './gpt2.js';
import { llama } from './llama.js';
import { mistral } from './mistral.js';
import type { Json } from './model.js';
import { qwen2 } from './qwen2.js';
import { qwen3 } from './qwen3.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const FAMILIES: Family<any>[] = [gpt2, llama, mistral, qwen2, qwen3, gemma3];

const ARCHITECTURES: Record<string, string> = {
  GPT2LMHeadModel: 'gpt2',
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  Gemma3ForCausalLM: 'gemma3_text',
};

/**
 * transformers' *ForSequenceClassification class of each model_type (what AutoModelForSequenceClassification builds).
 */
const SEQUENCE_CLASSIFIERS: Record<string, string> = {
  gpt2: 'GPT2ForSequenceClassification',
  llama: 'LlamaForSequenceClassification',
  mistral: 'MistralForSequenceClassification',
  qwen2: 'Qwen2ForSequenceClassification',
  qwen3: 'Qwen3ForSequenceClassification',
  gemma3_text: 'Gemma3TextForSequenceClassification',
};

/** The *ForSequenceClassification architecture name for a config.json (its model_type's). */
export function sequenceClassifierOf(config: Json, where = 'config.json'): string {
  const family = familyOf(config, where);
  const type = typeof config.model_type === 'string' ? config.model_type : family.modelTypes[0];
  const name = SEQUENCE_CLASSIFIERS[type];
  if (!name) throw new Error(`${where}: no *ForSequenceClassification class is known for model_type '${type}'`);
  return name;
}

export function supportedModelTypes(): string[] {
  return FAMILIES.flatMap((f) => f.modelTypes);
}

/** The family of a config.json; an unknown model_type lists the supported ones. */
export function familyOf(config: Json, where = 'config.json'): Family<unknown> {
  let type = typeof config.model_type === 'string' ? config.model_type : undefined;
  if (type === undefined && Array.isArray(config.architectures)) type = ARCHITECTURES[String(config.architectures[0])];
  if (type === 'gemma3' && config.text_config) {
    throw new Error(
      `${where}: model_type 'gemma3' is the multimodal Gemma 3; use a text-only checkpoint (model_type gemma3_text)`,
    );
  }
  const family = FAMILIES.find((f) => type !== undefined && f.modelTypes.includes(type));
  if (!family) {
    throw new Error(
      `${where}: model_type '${type ?? '(missing)'}' is not supported; supported: ${supportedModelTypes().join(', ')}`,
    );
  }
  return family;
}
