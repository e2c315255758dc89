// Reward-model training (the RLHF step DPO replaces; Stiennon et al. arXiv:2009.01325, Ouyang et al.
// arXiv:2203.02155): a sequence classifier with one label scores the chosen and the rejected sequence
// of each pair, and the Bradley-Terry loss asks the chosen one to score higher. The objective the
// training loop runs, and TRL 1.13 RewardTrainer's metrics.
import {
  add,
  affine,
  backward,
  detach,
  embedding,
  linear,
  logSigmoid,
  mean,
  narrow,
  noGrad,
  reshape,
  square,
  sub,
  tensor,
  tidyAsync,
  type Tensor,
} from '../core/index.js';
import { collateReward, type RewardBatch, type RewardDataset } from '../data/reward.js';
import type { SequenceClassifier } from '../models/seqcls.js';
import type { LoraDropout } from '../nn/linear.js';
import type { NamedParam } from './optim.js';
import type { RewardConfig } from './reward-config.js';
import { evaluateInBatches, type MicroResult, type Objective } from './loop.js';

/**
 * The Bradley-Terry loss of rewards [P] (chosen, rejected): mean_i -log sigmoid(r_c,i - r_r,i - m_i)
 * with optional margins m [P] (Llama 2's margin loss, arXiv:2307.09288 Eq. 2), plus
 * centerCoefficient * mean_i (r_c,i + r_r,i)^2 (reward centring, arXiv:2312.09244 Eq. 2).
 */
export function bradleyTerryLoss(
  chosen: Tensor,
  rejected: Tensor,
  o: { margins?: Tensor | null; centerCoefficient?: number } = {},
): Tensor {
  let diff = sub(chosen, rejected);
  if (o.margins) diff = sub(diff, o.margins);
  const loss = affine(mean(logSigmoid(diff)), -1);
  const c = o.centerCoefficient ?? 0;
  return c > 0 ? add(loss, affine(mean(square(add(chosen, rejected))), c)) : loss;
}

/** Rewards [2P] of a collated batch: the score head at each sequence's pooling position. */
export function batchRewards(sc: SequenceClassifier, b: RewardBatch, dropout: LoraDropout | null = null): Tensor {
  const B = 2 * b.P,
    C = sc.model.hiddenSize;
  const hidden = sc.model.body(tensor(b.inputIds, [B, b.T], 'i32'), {
    attentionMask: tensor(b.attentionMask, [B, b.T]),
    dropout,
  }); // (B, T, C)
  const pooled = embedding(reshape(hidden, [B * b.T, C]), tensor(b.scoreAt, [B], 'i32')); // (B, C)
  return reshape(linear(pooled, sc.score), [B]); // (B)
}

/** TRL's metrics of one micro-batch from the host rewards [2P] (chosen first): accuracy counts r_c > r_r strictly. */
export function rewardMetrics(r: ArrayLike<number>, P: number): Record<string, number> {
  let acc = 0,
    margin = 0,
    min = Infinity,
    max = -Infinity,
    sum = 0;
  for (let i = 0; i < P; i++) {
    acc += r[i] > r[P + i] ? 1 : 0;
    margin += r[i] - r[P + i];
  }
  for (let i = 0; i < 2 * P; i++) {
    min = Math.min(min, r[i]);
    max = Math.max(max, r[i]);
    sum += r[i];
  }
  return { accuracy: acc / P, margin: margin / P, min_reward: min, mean_reward: sum / (2 * P), max_reward: max };
}

export interface RewardParts {
  cfg: RewardConfig;
  model: SequenceClassifier;
  params: NamedParam[];
  train: RewardDataset;
  eval: RewardDataset | null;
  padId: number;
  loraDropout: number;
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
}

export class RewardObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout: number;

  constructor(readonly parts: RewardParts) {
    this.size = parts.train.examples.length;
    this.params = parts.params;
    this.loraDropout = parts.loraDropout;
  }

  private forward(
    data: RewardDataset,
    indices: number[],
    scale: number | null,
    dropout: LoraDropout | null = null,
  ): Promise<MicroResult> {
    const b = collateReward(
      indices.map((i) => data.examples[i]),
      this.parts.padId,
    );
    return tidyAsync(async () => {
      const rewards = batchRewards(this.parts.model, b, dropout);
      const loss = bradleyTerryLoss(narrow(rewards, 0, 0, b.P), narrow(rewards, 0, b.P, b.P), {
        margins: b.margins ? tensor(b.margins) : null,
        centerCoefficient: this.parts.cfg.center_rewards_coefficient,
      });
      const lossOut = detach(loss),
        rewardsOut = detach(rewards); // read after backward frees the graph
      if (scale !== null) backward(scale === 1 ? loss : affine(loss, scale), { free: true });
      const [value, host] = await Promise.all([lossOut.item(), rewardsOut.toArray()]);
      return { loss: value, metrics: rewardMetrics(host, b.P), tokens: b.tokens };
    });
  }

  micro(indices: number[], scale: number, _step?: number, dropout?: LoraDropout | null): Promise<MicroResult> {
    return this.forward(this.parts.train, indices, scale, dropout);
  }

  async evaluate(): Promise<Record<string, number> | null> {
    const ev = this.parts.eval;
    if (!ev || ev.examples.length === 0) return null;
    return evaluateInBatches(ev.examples.length, this.parts.cfg.per_device_eval_batch_size, (idx) =>
      noGrad(() => this.forward(ev, idx, null)),
    );
  }

  saveWeights(dir: string): Promise<void> {
    return this.parts.saveWeights(dir);
  }

  loadWeights(dir: string): Promise<void> {
    return this.parts.loadWeights(dir);
  }
}
