// Preference pairs from scored samples, as in the DPO paper's IMDb experiment (arXiv:2305.18290,
// Sec. 6.1: pairs of completions of the reference model, labelled by a sentiment classifier):
// per prompt, the completion with the highest reward is chosen and the one with the lowest is
// rejected. A prompt whose completions all tie (often all at 0.5: no sentiment word) gives no pair.
import type { TokenizedPair } from '../data/tokenize.js';
import type { DemoPrompt, Scored } from './sample.js';

export interface DemoPair extends TokenizedPair {
  prompt: string;
  chosen: Scored;
  rejected: Scored;
}

export interface Pairs {
  pairs: DemoPair[];
  /** Prompts skipped because their best and worst completions tie. */
  skippedTies: number;
}

/** Best vs worst completion per prompt (first of equals), ties skipped. groups[i] are prompt i's samples. */
export function buildPairs(prompts: readonly DemoPrompt[], groups: readonly (readonly Scored[])[]): Pairs {
  if (prompts.length !== groups.length)
    throw new Error(`buildPairs: ${prompts.length} prompts but ${groups.length} groups of samples`);
  const pairs: DemoPair[] = [];
  let skippedTies = 0;
  groups.forEach((g, i) => {
    if (g.length < 2)
      throw new Error(`buildPairs: prompt ${i} has ${g.length} samples; at least 2 are needed for a pair`);
    let best = 0,
      worst = 0;
    for (let j = 1; j < g.length; j++) {
      if (g[j].reward > g[best].reward) best = j;
      if (g[j].reward < g[worst].reward) worst = j;
    }
    if (!(g[best].reward > g[worst].reward)) {
      skippedTies++;
      return;
    }
    pairs.push({
      prompt: prompts[i].text,
      chosen: g[best],
      rejected: g[worst],
      promptIds: prompts[i].ids,
      chosenIds: g[best].ids,
      rejectedIds: g[worst].ids,
    });
  });
  return { pairs, skippedTies };
}
