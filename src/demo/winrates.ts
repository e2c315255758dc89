// Win rates against the dataset's chosen completions, the analogues of the DPO paper's Fig. 2 right
// (win rate against the reference summaries by sampling temperature) and Fig. 3 (win rate over
// training at fixed temperatures) (arXiv:2305.18290, Sec. 6.2). Here the "dataset" of the held-out
// prompts is built as the training pairs are: samples of the starting model, the best one chosen
// (prompts whose samples all tie have no chosen completion and are left out), and the judge is the
// ground-truth reward (a tie counts 1/2).
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { MeanEstimate } from '../eval/kl.js';
import { sampleScored, type SampleOptions } from '../eval/sample.js';
import { winRate } from '../eval/win-rate.js';
import { demoReward, type DemoPrompt, type Scored } from './sample.js';

/** The chosen completion's reward per held-out prompt, or null where the prompt's samples all tie. */
export function chosenRewards(groups: readonly (readonly Scored[])[]): (number | null)[] {
  return groups.map((g) => {
    const rs = g.map((s) => s.reward);
    const hi = Math.max(...rs),
      lo = Math.min(...rs);
    return hi > lo ? hi : null;
  });
}

/** Win rate of a policy's samples [prompt][sample] against the chosen completions, over the prompts that have one. */
export function winVsChosen(samples: readonly (readonly Scored[])[], chosen: readonly (number | null)[]): MeanEstimate {
  if (samples.length !== chosen.length)
    throw new Error(`winVsChosen: ${samples.length} prompts of samples, ${chosen.length} of chosen completions`);
  const keep = chosen.map((c, i) => (c === null ? -1 : i)).filter((i) => i >= 0);
  if (keep.length === 0) throw new Error('winVsChosen: no held-out prompt has a chosen completion (all samples tied)');
  return winRate(
    keep.map((i) => samples[i].map((s) => s.reward)),
    keep.map((i) => [chosen[i]!]),
  );
}

export interface TemperatureSettings {
  tok: TextTokenizer;
  prompts: DemoPrompt[];
  /** Sampling of the evaluation (its seed, samples per prompt, length). */
  sample: Omit<SampleOptions, 'k' | 'temperature'> & { samplesPerPrompt: number };
  chosen: (number | null)[];
}

/**
 * Win rate vs chosen at each temperature. `atOne`: the policy's samples at temperature 1 when
 * already drawn with the same seed (they are then the same samples).
 */
export async function winByTemperature(
  policy: CausalLM,
  temperatures: readonly number[],
  s: TemperatureSettings,
  atOne: Scored[][] | null = null,
): Promise<MeanEstimate[]> {
  const out: MeanEstimate[] = [];
  for (const t of temperatures) {
    const samples =
      t === 1 && atOne
        ? atOne
        : await sampleScored(policy, s.tok, s.prompts, demoReward, {
            ...s.sample,
            k: s.sample.samplesPerPrompt,
            temperature: t,
          });
    out.push(winVsChosen(samples, s.chosen));
  }
  return out;
}
