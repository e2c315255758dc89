// The models of a PPO run besides the policy: the critic (from a reward model folder, or the
// policy's backbone with a zero value head) and its parameters under the names TRL's optimizer
// sees (policy.*, value_model.*).
import { keep, tensor } from '../core/index.js';
import { loadRewardModel } from '../eval/reward-model.js';
import { hostParams, loadModel, trainAll } from '../models/load.js';
import { saveHfFolder } from '../io/hf.js';
import type { NamedParam } from '../train/optim.js';
import type { ValueModel } from './ppo.js';

/** A trainable critic from a *ForSequenceClassification folder with one label (TRL: value_model = the reward model's weights). */
export function valueFromRewardFolder(dir: string): ValueModel {
  const rm = loadRewardModel(dir);
  if (rm.labels.length !== 1)
    throw new Error(
      `${dir}: a value model needs one label (score.weight [1, hidden]); this one has ${rm.labels.length}`,
    );
  return { model: rm.model, head: rm.score, source: dir };
}

/** The PPO-GT critic: a copy of the policy's backbone with a zero-initialised value head [1, C]. */
export function valueFromPolicy(dir: string): ValueModel {
  const model = loadModel(dir);
  return { model, head: keep(tensor(new Float32Array(model.hiddenSize), [1, model.hiddenSize])), source: dir };
}

/** The critic's parameters, trainable, named value_model.<HF name> (score.weight for the head). */
export function valueParams(v: ValueModel): NamedParam[] {
  v.head.requiresGrad = true;
  return [
    ...trainAll(v.model).map((p) => ({ name: `value_model.${p.name}`, tensor: p.tensor })),
    { name: 'value_model.score.weight', tensor: v.head },
  ];
}

/** Prefixes the policy's parameter names with policy. (TRL's PolicyAndValueWrapper). */
export const policyParams = (params: NamedParam[]): NamedParam[] =>
  params.map((p) => ({ name: `policy.${p.name}`, tensor: p.tensor }));

/** Writes the critic as a *ForSequenceClassification folder (num_labels 1) that transformers loads. */
export async function saveValueModel(v: ValueModel, dir: string): Promise<void> {
  const tensors = await hostParams(v.model);
  // The body was built as if tied (no LM head): drop a tied head if the family lists one.
  tensors.delete('lm_head.weight');
  tensors.set('score.weight', {
    name: 'score.weight',
    dtype: 'F32',
    shape: [...v.head.shape],
    data: Float32Array.from(await v.head.toArray()),
  });
  const arch = ((v.model.config.architectures as string[] | undefined) ?? [])[0] ?? '';
  const cls = arch.endsWith('ForSequenceClassification')
    ? arch
    : arch.replace(/(LMHeadModel|ForCausalLM)$/, 'ForSequenceClassification');
  const config = {
    ...v.model.config,
    architectures: [cls],
    num_labels: 1,
    id2label: { 0: 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    torch_dtype: 'float32',
    dtype: 'float32',
  };
  saveHfFolder(dir, { config, tensors });
}
