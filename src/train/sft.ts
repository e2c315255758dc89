// Supervised fine-tuning: next-token cross-entropy on the tokens each example marks (the
// completion, or every token of plain text), averaged over those tokens as TRL's SFTTrainer does.
import { affine, backward, detach, noGrad, sum, tidyAsync } from '../core/index.js';
import { collateSft } from '../data/collate.js';
import type { SftDataset, SftExample } from '../data/sft.js';
import type { LoraDropout } from '../nn/linear.js';
import type { CausalLM } from '../models/model.js';
import type { SftConfig } from './config.js';
import { sequenceLogps, STAT_COLUMNS, targetIsArgmax, type TokenBatch } from './logps.js';
import type { NamedParam } from './optim.js';
import { batchesOf, type MicroResult, type Objective } from './trainer.js';

export interface SftParts {
  cfg: SftConfig;
  policy: CausalLM;
  params: NamedParam[];
  train: SftDataset;
  eval: SftDataset | null;
  padId: number;
  /** LoRA dropout probability while training (0 without an adapter). */
  loraDropout: number;
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
}

/**
 * TRL's SFT metrics over the scored positions of a batch (rows of STAT_COLUMNS values): the mean
 * entropy of the predicted distribution, and the share of positions whose target is the argmax.
 */
export function tokenMetrics(stats: ArrayLike<number>): Record<string, number> {
  const n = stats.length / STAT_COLUMNS;
  let entropy = 0, hits = 0;
  for (let i = 0; i < n; i++) {
    entropy += stats[i * STAT_COLUMNS + 1];
    if (targetIsArgmax(stats[i * STAT_COLUMNS + 2])) hits++;
  }
  return { entropy: n > 0 ? entropy / n : 0, mean_token_accuracy: n > 0 ? hits / n : 0 };
}

/** Tokens an example's loss counts: those after its prompt (the first token is never a target). */
function lossTokens(e: SftExample): number {
  return Math.max(0, e.ids.length - Math.max(1, e.promptLength));
}

export class SftObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout: number;

  constructor(readonly parts: SftParts) {
    this.size = parts.train.examples.length;
    this.params = parts.params;
    this.loraDropout = parts.loraDropout;
  }

  private async forward(data: SftDataset, indices: number[], scale: number | null, dropout: LoraDropout | null = null): Promise<MicroResult> {
    const b = collateSft(indices.map((i) => data.examples[i]), { padId: this.parts.padId });
    const batch: TokenBatch = { rows: b.B, T: b.T, inputIds: b.inputIds, attentionMask: b.attentionMask, completionMask: b.lossMask };
    let tokens = 0;
    for (const n of b.seqLengths) tokens += n;
    return tidyAsync(async () => {
      const r = sequenceLogps(this.parts.policy, batch, { headOnCompletion: true, stats: true, dropout });
      const counted = r.tokens.reduce((a, n) => a + n, 0);
      // Mean negative log-likelihood over the counted tokens of the batch.
      const loss = affine(sum(r.seq), -1 / Math.max(1, counted));
      const lossOut = detach(loss); // read after backward frees the graph
      if (scale !== null) backward(affine(loss, scale), { free: true });
      const [value, stats] = await Promise.all([lossOut.item(), r.stats!.values.toArray()]);
      return { loss: value, metrics: tokenMetrics(stats), tokens };
    });
  }

  /** Each micro-batch's share of the step's loss tokens (the loss is their mean over the whole step). */
  microWeights(batches: number[][]): number[] {
    const counts = batches.map((idx) => idx.reduce((a, i) => a + lossTokens(this.parts.train.examples[i]), 0));
    const total = counts.reduce((a, n) => a + n, 0);
    return counts.map((n) => (total > 0 ? n / total : 1 / batches.length));
  }

  micro(indices: number[], scale: number, _step?: number, dropout?: LoraDropout | null): Promise<MicroResult> {
    return this.forward(this.parts.train, indices, scale, dropout);
  }

  async evaluate(): Promise<Record<string, number> | null> {
    const ev = this.parts.eval;
    if (!ev || ev.examples.length === 0) return null;
    const bs = this.parts.cfg.per_device_eval_batch_size;
    // As transformers' evaluation loop and TRL: the loss is a mean over examples of each batch's
    // loss, the other metrics a mean over batches.
    let loss = 0, examples = 0, batches = 0, entropy = 0, accuracy = 0;
    for (const idx of batchesOf(ev.examples.length, bs)) {
      const r = await noGrad(() => this.forward(ev, idx, null));
      loss += r.loss * idx.length;
      examples += idx.length;
      entropy += r.metrics.entropy;
      accuracy += r.metrics.mean_token_accuracy;
      batches++;
    }
    return { loss: loss / examples, entropy: entropy / batches, mean_token_accuracy: accuracy / batches };
  }

  saveWeights(dir: string): Promise<void> {
    return this.parts.saveWeights(dir);
  }

  loadWeights(dir: string): Promise<void> {
    return this.parts.loadWeights(dir);
  }
}
