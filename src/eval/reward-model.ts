// A trained reward model as the judge: a Hugging Face *ForSequenceClassification checkpoint of a
// supported family (GPT2ForSequenceClassification, LlamaForSequenceClassification, ...), i.e. the
// decoder plus `score`, a linear layer [num_labels, hidden] without bias. As in transformers, the
// score is read at the last token of each sequence that is not config.pad_token_id (the last token
// when pad_token_id is unset). One label: the reward is that score (what TRL's RewardTrainer
// trains); several: the probability of the chosen label (a classifier such as a sentiment model).
// A PEFT adapter that `tsdpo reward --lora` saved is loaded on its base model.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { embedding, linear, noGrad, reshape, tensor, tidyAsync, type Tensor } from '../core/index.js';
import { padIdFor } from '../data/collate.js';
import { lastNonPad } from '../data/reward.js';
import { encodePrompt } from '../data/tokenize.js';
import { ADAPTER_CONFIG, loadPeftAdapter } from '../io/peft.js';
import type { CausalLM } from '../models/model.js';
import { loadRewardAdapter, loadSequenceClassifier } from '../models/seqcls.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { RewardFn } from './sample.js';

export interface RewardModel {
  dir: string;
  model: CausalLM;
  /** score.weight [num_labels, hidden]. */
  score: Tensor;
  padTokenId: number | null;
  /** Label names by index (config.id2label, else LABEL_i). */
  labels: string[];
}

/**
 * Loads a *ForSequenceClassification folder (config.json and safetensors; the judge also reads its
 * tokenizer files), or a PEFT adapter of one (`tsdpo reward --lora`): its base model
 * (base_model_name_or_path) with the LoRA factors and the score head of modules_to_save.
 */
export function loadRewardModel(dir: string): RewardModel {
  if (existsSync(join(dir, ADAPTER_CONFIG))) {
    const base = String(loadPeftAdapter(dir).config.base_model_name_or_path ?? '');
    if (!base || !existsSync(base)) {
      throw new Error(
        `${dir}: a PEFT adapter whose base model '${base}' ` +
          `(base_model_name_or_path in ${ADAPTER_CONFIG}) is not a folder here`,
      );
    }
    // The base's own head (or a placeholder for a causal LM base) is replaced by the adapter's.
    const sc = loadSequenceClassifier(base, { newHead: { numLabels: 1, seed: 0 } });
    loadRewardAdapter(sc, dir);
    const labels = Array.from({ length: sc.score.shape[0] }, (_, i) => `LABEL_${i}`);
    // As TRL sets config.pad_token_id from the tokenizer (its pad token, else EOS).
    return { dir, model: sc.model, score: sc.score, padTokenId: padIdFor(loadTokenizer(dir)), labels };
  }
  const { model, score, config } = loadSequenceClassifier(dir);
  const id2label = (config.id2label ?? {}) as Record<string, string>;
  const labels = Array.from({ length: score.shape[0] }, (_, i) => String(id2label[String(i)] ?? `LABEL_${i}`));
  const pad = config.pad_token_id;
  return { dir, model, score, padTokenId: typeof pad === 'number' ? pad : null, labels };
}

/**
 * Where transformers reads the score: the last position whose token is not `pad` (0 if all are); the last one without
 * `pad`.
 */
export function pooledIndex(ids: readonly number[], pad: number | null): number {
  return pad === null ? ids.length - 1 : lastNonPad(ids, 0, ids.length, pad);
}

/** Score logits [num_labels] of each token sequence, in batches of `batchSize`. */
export async function scoreSequences(
  rm: RewardModel,
  rows: readonly (readonly number[])[],
  batchSize = 16,
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const L = rm.score.shape[0];
  for (let s = 0; s < rows.length; s += batchSize) {
    const chunk = rows.slice(s, s + batchSize);
    const B = chunk.length,
      T = Math.max(...chunk.map((r) => r.length));
    if (chunk.some((r) => r.length === 0)) throw new Error('scoreSequences: an empty sequence');
    const ids = new Int32Array(B * T).fill(rm.padTokenId ?? 0),
      mask = new Float32Array(B * T),
      at = new Int32Array(B);
    chunk.forEach((r, b) => {
      ids.set(r, b * T);
      mask.fill(1, b * T, b * T + r.length);
      at[b] = b * T + pooledIndex(r, rm.padTokenId);
    });
    const logits = await noGrad(() =>
      tidyAsync(async () => {
        const hidden = rm.model.body(tensor(ids, [B, T], 'i32'), { attentionMask: tensor(mask, [B, T]) }); // (B, T, C)
        const pooled = embedding(reshape(hidden, [B * T, rm.model.hiddenSize]), tensor(at, [B], 'i32')); // (B, C)
        return linear(pooled, rm.score).toArray(); // (B, L)
      }),
    );
    for (let b = 0; b < B; b++) out.push(Float32Array.from(logits.subarray(b * L, (b + 1) * L)));
  }
  return out;
}

/**
 * The reward of prompt + completion (tokenized by the reward model's own tokenizer, BOS as it
 * adds it): the score with one label; with several, the probability of `label` (index or name).
 */
export function rewardModelJudge(
  rm: RewardModel,
  label?: string,
): RewardFn & { batch: (items: { prompt: string; completion: string }[]) => Promise<number[]> } {
  const L = rm.labels.length;
  let index = 0;
  if (L > 1) {
    if (label === undefined) {
      throw new Error(
        `${rm.dir}: the reward model has ${L} labels (${rm.labels.join(', ')}): ` +
          `choose one with --reward_label (name or index)`,
      );
    }
    index = /^\d+$/.test(label) ? Number(label) : rm.labels.indexOf(label);
    if (index < 0 || index >= L)
      throw new Error(`--reward_label ${label}: not one of ${rm.labels.map((l, i) => `${i} (${l})`).join(', ')}`);
  } else if (label !== undefined && label !== '0' && label !== rm.labels[0]) {
    throw new Error(`--reward_label ${label}: the reward model has one label (its score is the reward)`);
  }
  const value = (logits: Float32Array): number => {
    if (L === 1) return logits[0];
    const m = Math.max(...logits);
    const z = logits.reduce((s, x) => s + Math.exp(x - m), 0);
    return Math.exp(logits[index] - m) / z;
  };
  const tok: TextTokenizer = loadTokenizer(rm.dir);
  const batch = async (items: { prompt: string; completion: string }[]): Promise<number[]> =>
    (
      await scoreSequences(
        rm,
        items.map((x) => encodePrompt(tok, x.prompt + x.completion)),
      )
    ).map(value);
  const one = async (prompt: string, completion: string): Promise<number> => (await batch([{ prompt, completion }]))[0];
  return Object.assign(one, { batch });
}
