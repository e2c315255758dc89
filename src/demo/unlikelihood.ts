// The Unlikelihood baseline of the DPO paper (arXiv:2305.18290, Sec. 6: "simply optimizes the policy
// to maximize the probability assigned to y_w and minimize the probability assigned to y_l", with a
// coefficient alpha on the unlikelihood term). Per batch of P pairs, with token-mean log-probs as
// Preferred-FT's NLL (so that alpha = 0 is Preferred-FT):
//   loss = -sum_i log pi(y_w,i | x_i) / sum_i |y_w,i|  +  alpha * sum_i log pi(y_l,i | x_i) / sum_i |y_l,i|
// The second term has no floor (log pi(y_l) can fall without limit): the instability the paper reports.
import { add, affine, backward, detach, narrow, sum, tidyAsync } from '../core/index.js';
import type { CausalLM } from '../models/model.js';
import { batchOf } from '../train/dpo.js';
import { sequenceLogps } from '../train/logps.js';
import type { NamedParam } from '../train/optim.js';
import type { MicroResult, Objective } from '../train/trainer.js';
import type { DemoPair } from './pairs.js';

export interface UnlikelihoodParts {
  policy: CausalLM;
  params: NamedParam[];
  pairs: DemoPair[];
  padId: number;
  /** Weight of the unlikelihood term (0 = Preferred-FT). */
  alpha: number;
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
}

export class UnlikelihoodObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout = 0;

  constructor(readonly parts: UnlikelihoodParts) {
    if (!(parts.alpha >= 0)) throw new Error(`UnlikelihoodObjective: alpha is ${parts.alpha}; expected a number >= 0`);
    this.size = parts.pairs.length;
    this.params = parts.params;
  }

  micro(indices: number[], scale: number): Promise<MicroResult> {
    const { policy, padId, alpha } = this.parts;
    const b = batchOf(
      indices.map((i) => this.parts.pairs[i]),
      padId,
    ); // rows chosen_0..chosen_{P-1}, rejected_0..
    const P = b.P;
    return tidyAsync(async () => {
      const lp = sequenceLogps(policy, b); // seq: (2P) summed completion log-probs
      let lenC = 0,
        lenR = 0;
      for (let i = 0; i < P; i++) {
        lenC += Math.max(1, lp.tokens[i]);
        lenR += Math.max(1, lp.tokens[P + i]);
      }
      const chosen = affine(sum(narrow(lp.seq, 0, 0, P)), 1 / lenC); // (1) token-mean log p(y_w)
      const rejected = affine(sum(narrow(lp.seq, 0, P, P)), 1 / lenR); // (1) token-mean log p(y_l)
      const loss = add(affine(chosen, -1), affine(rejected, alpha));
      const [lossOut, c, r] = [detach(loss), detach(chosen), detach(rejected)];
      backward(scale === 1 ? loss : affine(loss, scale), { free: true });
      const [value, cv, rv] = await Promise.all([lossOut.item(), c.item(), r.item()]);
      return {
        loss: value,
        metrics: { 'logps/chosen_per_token': cv, 'logps/rejected_per_token': rv },
        tokens: b.tokens,
      };
    });
  }

  async evaluate(): Promise<Record<string, number> | null> {
    return null;
  }

  saveWeights(dir: string): Promise<void> {
    return this.parts.saveWeights(dir);
  }

  loadWeights(dir: string): Promise<void> {
    return this.parts.loadWeights(dir);
  }
}
