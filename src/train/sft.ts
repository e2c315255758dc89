// Supervised fine-tuning: next-token cross-entropy on the tokens each example marks (the
// completion, or every token of plain text), averaged over those tokens as TRL's SFTTrainer does.
import { affine, backward, detach, noGrad, sum, tidyAsync } from '../core/index.js';
import { collateSft } from '../data/collate.js';
import type { SftDataset } from '../data/sft.js';
import type { CausalLM } from '../models/model.js';
import type { SftConfig } from './config.js';
import { sequenceLogps, type TokenBatch } from './logps.js';
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

export class SftObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout: number;

  constructor(readonly parts: SftParts) {
    this.size = parts.train.examples.length;
    this.params = parts.params;
    this.loraDropout = parts.loraDropout;
  }

  private async forward(data: SftDataset, indices: number[], scale: number | null): Promise<MicroResult> {
    const b = collateSft(indices.map((i) => data.examples[i]), { padId: this.parts.padId });
    const batch: TokenBatch = { rows: b.B, T: b.T, inputIds: b.inputIds, attentionMask: b.attentionMask, completionMask: b.lossMask };
    let tokens = 0;
    for (const n of b.seqLengths) tokens += n;
    return tidyAsync(async () => {
      const r = sequenceLogps(this.parts.policy, batch, { headOnCompletion: true });
      const counted = r.tokens.reduce((a, n) => a + n, 0);
      // Mean negative log-likelihood over the counted tokens of the batch.
      const loss = affine(sum(r.seq), -1 / Math.max(1, counted));
      const lossOut = detach(loss); // read after backward frees the graph
      if (scale !== null) backward(affine(loss, scale), { free: true });
      const value = await lossOut.item();
      return { loss: value, metrics: { num_tokens: counted }, tokens };
    });
  }

  micro(indices: number[], scale: number): Promise<MicroResult> {
    return this.forward(this.parts.train, indices, scale);
  }

  async evaluate(): Promise<Record<string, number> | null> {
    const ev = this.parts.eval;
    if (!ev || ev.examples.length === 0) return null;
    const bs = this.parts.cfg.per_device_eval_batch_size;
    let nll = 0, count = 0;
    for (const idx of batchesOf(ev.examples.length, bs)) {
      const r = await noGrad(() => this.forward(ev, idx, null));
      nll += r.loss * r.metrics.num_tokens;
      count += r.metrics.num_tokens;
    }
    return { loss: nll / Math.max(1, count) };
  }

  saveWeights(dir: string): Promise<void> {
    return this.parts.saveWeights(dir);
  }

  loadWeights(dir: string): Promise<void> {
    return this.parts.loadWeights(dir);
  }
}
