// A decoder with a classification head, transformers' *ForSequenceClassification: the causal LM's
// body (no lm_head) plus `score`, a linear layer [num_labels, hidden] without bias, read at the last
// non-pad token. Loaded from such a folder, or from a causal LM folder with a new seeded head (as
// AutoModelForSequenceClassification does, which also drops lm_head), and saved as a folder that
// transformers loads.
import { Rng } from '../core/random.js';
import { keep, tensor, type Tensor } from '../core/tensor.js';
import { loadHfFolder, saveHfFolder } from '../io/hf.js';
import { loadPeftAdapter } from '../io/peft.js';
import { buildModel } from './build.js';
import { hostParams } from './load.js';
import { loadAdapter, type AdapterInfo } from './lora.js';
import type { CausalLM, Json } from './model.js';
import { sequenceClassifierOf } from './registry.js';

export interface SequenceClassifier {
  dir: string;
  /** The decoder; its LM head is never used (built as if tied, so no lm_head is held). */
  model: CausalLM;
  /** score.weight [num_labels, hidden]. */
  score: Tensor;
  /** config.json as a *ForSequenceClassification model (architectures, id2label / label2id). */
  config: Json;
  /** Whether the head was made here (the folder held a causal LM). */
  newHead: boolean;
}

export function isSequenceClassifierConfig(config: Json): boolean {
  const arch = Array.isArray(config.architectures) ? (config.architectures as unknown[]).map(String) : [];
  return arch.some((a) => a.endsWith('ForSequenceClassification'));
}

export interface NewHeadOptions {
  numLabels: number;
  /** Seed of the head's normal(0, initializer_range) init. */
  seed: number;
}

/**
 * Loads a *ForSequenceClassification folder; with `newHead`, a causal LM folder is accepted too and
 * gets a fresh head (the init cannot match torch's draws: same distribution, different numbers).
 */
export function loadSequenceClassifier(
  dir: string,
  opts: { newHead?: NewHeadOptions; frozenDtype?: 'f32' | 'bf16' } = {},
): SequenceClassifier {
  const folder = loadHfFolder(dir, { lazy: true });
  const isSeqCls = isSequenceClassifierConfig(folder.config);
  if (!isSeqCls && !opts.newHead) {
    const arch = JSON.stringify(folder.config.architectures ?? null);
    throw new Error(
      `${dir}: not a reward model: config.json architectures is ${arch}; expected a ` +
        '*ForSequenceClassification model (a decoder with a `score` head, e.g. GPT2ForSequenceClassification)',
    );
  }
  const body = new Map(folder.tensors);
  body.delete('score.weight');
  body.delete('lm_head.weight');
  if (body.has('score.bias'))
    throw new Error(`${dir}: 'score.bias' is not expected (transformers' score head has no bias)`);
  const model = buildModel({ ...folder.config, tie_word_embeddings: true }, body, dir, undefined, {
    frozenDtype: opts.frozenDtype,
  });
  const C = model.hiddenSize;
  let score: Tensor;
  let config: Json;
  if (isSeqCls) {
    const raw = folder.tensors.get('score.weight');
    if (!raw)
      throw new Error(
        `${dir}: no tensor 'score.weight' (the classification head of a *ForSequenceClassification model)`,
      );
    if (raw.shape.length !== 2 || raw.shape[1] !== C) {
      throw new Error(`${dir}: score.weight has shape [${raw.shape.join(', ')}]; expected [num_labels, ${C}]`);
    }
    score = keep(tensor(raw.toFloat32(), [...raw.shape]));
    config = folder.config;
  } else {
    const { numLabels, seed } = opts.newHead!;
    const std = typeof folder.config.initializer_range === 'number' ? folder.config.initializer_range : 0.02;
    const rng = new Rng(seed);
    score = keep(
      tensor(
        Float32Array.from({ length: numLabels * C }, () => rng.normal() * std),
        [numLabels, C],
      ),
    );
    const labels = Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`);
    config = {
      ...folder.config,
      architectures: [sequenceClassifierOf(folder.config, `${dir}/config.json`)],
      id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
      label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    };
  }
  score.name = 'score.weight';
  return { dir, model, score, config, newHead: !isSeqCls };
}

/** Writes body + score.weight and config.json (with pad_token_id, which transformers pools by) into dir. */
export async function saveSequenceClassifier(
  sc: SequenceClassifier,
  dir: string,
  padTokenId: number | null,
): Promise<void> {
  const tensors = await hostParams(sc.model);
  tensors.set('score.weight', {
    name: 'score.weight',
    dtype: 'F32',
    shape: [...sc.score.shape],
    data: Float32Array.from(await sc.score.toArray()),
  });
  const config = { ...sc.config, pad_token_id: padTokenId, torch_dtype: 'float32', dtype: 'float32' };
  saveHfFolder(dir, { config, tensors });
}

/**
 * Attaches a PEFT adapter of a sequence classifier (task SEQ_CLS): the LoRA factors, and the score
 * head saved whole beside them (modules_to_save), which replaces the classifier's.
 */
export function loadRewardAdapter(sc: SequenceClassifier, dir: string): AdapterInfo {
  const score = loadPeftAdapter(dir).extraTensors.get('score.weight');
  if (!score) {
    throw new Error(
      `${dir}: the adapter holds no score head (base_model.model.score.weight); a reward adapter keeps it ` +
        "whole in modules_to_save (PEFT's SEQ_CLS task, modules_to_save ['score'])",
    );
  }
  if (score.shape.join() !== sc.score.shape.join()) {
    throw new Error(
      `${dir}: score.weight has shape [${score.shape.join(', ')}]; the model's head is [${sc.score.shape.join(', ')}]`,
    );
  }
  const info = loadAdapter(sc.model, dir, { modulesToSave: ['score'] });
  sc.score.backend.write(sc.score.storage, score.toFloat32());
  return info;
}
