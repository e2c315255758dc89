// Completions of prompts sampled from a model and scored by a reward: what the evaluation of a
// policy (evaluate.ts), best-of-N and the demo's preference pairs are made of.
import { tidyAsync } from '../core/index.js';
import { Rng } from '../core/random.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { generate } from './generate.js';

/** A prompt: its text (what the reward sees) and its ids (what the model sees). */
export interface EvalPrompt {
  text: string;
  ids: number[];
}

/** One sampled completion: its tokens (EOS included when reached), text (specials dropped) and reward. */
export interface Scored {
  ids: number[];
  text: string;
  reward: number;
}

/**
 * The judge of a completion: a finite number, higher is better. A judge that scores many at once
 * faster (a reward model) also has `batch`.
 */
export type RewardFn = ((prompt: string, completion: string) => number | Promise<number>) & {
  /** Scores many completions at once (a reward model's batched forward pass). */
  batch?: (items: { prompt: string; completion: string }[]) => Promise<number[]>;
};

export interface SampleOptions {
  /** Completions per prompt. */
  k: number;
  maxNewTokens: number;
  seed: number;
  /** Most rows generated together (prompts x k are cut into equal batches of at most this). */
  batchSize: number;
  /**
   * Every batch is generated as if its longest prompt had this many tokens (one extra row of this
   * length, whose output is dropped): then every batch of every call allocates the same tensor
   * sizes, which the CPU allocator's size classes reuse instead of reserving more memory.
   */
  promptWidth?: number;
  /** Sampling temperature (default 1: the model's own distribution, as a KL estimate needs). */
  temperature?: number;
  /** Tokens that end a completion (default: the tokenizer's EOS). */
  eosIds?: number[];
  onProgress?: (done: number, total: number) => void;
  /**
   * Seed every completion by itself: completion j of prompt i draws from Rng([seed, firstPrompt + i, j, 0x5eed])
   * (row seeds), so a prompt's samples do not depend on which other prompts share its batches: a run
   * over a shard of the prompts (firstPrompt = the shard's first index) gives the whole run's samples.
   */
  rowSeeds?: { firstPrompt: number };
}

/** The generator of completion `sample` of prompt `prompt` (SampleOptions.rowSeeds). */
export function rowRng(seed: number, prompt: number, sample: number): Rng {
  // Four words through splitmix-style mixing of each (Rng takes a state of four words, never all zero).
  const mix = (x: number): number => {
    let z = (x + 0x9e3779b9) >>> 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  return new Rng([mix(seed), mix(prompt ^ 0x243f6a88), mix(sample ^ 0x85a308d3), mix(seed + prompt * 31 + sample) | 1]);
}

/**
 * k completions of each prompt by sampling (no top-k / top-p), each scored by `reward`. Returns
 * [prompt][k]. The same seed gives every model the same random numbers.
 */
export async function sampleScored(
  model: CausalLM,
  tok: TextTokenizer,
  prompts: readonly EvalPrompt[],
  reward: RewardFn,
  o: SampleOptions,
): Promise<Scored[][]> {
  const eos = tok.eosId;
  if (eos === null) throw new Error(`sampleScored: the tokenizer of ${tok.source} has no EOS token`);
  const rows: number[] = [],
    sampleOf: number[] = [];
  prompts.forEach((_, i) => {
    for (let j = 0; j < o.k; j++) {
      rows.push(i);
      sampleOf.push(j);
    }
  });
  const rng = new Rng(o.seed);
  const out: Scored[][] = prompts.map(() => []);
  const batches = Math.ceil(rows.length / o.batchSize),
    size = Math.ceil(rows.length / Math.max(1, batches));
  const width = Math.max(o.promptWidth ?? 0, ...prompts.map((p) => p.ids.length));
  for (let start = 0; start < rows.length; start += size) {
    const chunk = rows.slice(start, start + size);
    const ids = chunk.map((i) => prompts[i].ids);
    const rowRngs = o.rowSeeds
      ? chunk.map((i, r) => rowRng(o.seed, o.rowSeeds!.firstPrompt + i, sampleOf[start + r]))
      : undefined;
    // Pad the last batch to the common size and add the width row (both dropped below).
    while (ids.length < size) ids.push(prompts[chunk[0]].ids);
    ids.push(new Array<number>(width).fill(eos));
    const g = await tidyAsync(() =>
      generate(model, ids, {
        maxNewTokens: o.maxNewTokens,
        doSample: true,
        temperature: o.temperature ?? 1,
        topK: 0,
        topP: 1,
        eosIds: o.eosIds ?? [eos],
        padId: eos,
        rng,
        rowRngs,
      }),
    );
    const texts = chunk.map((_, r) => tok.decode(g.tokens[r], { skipSpecialTokens: true }));
    const items = chunk.map((i, r) => ({ prompt: prompts[i].text, completion: texts[r] }));
    const values = reward.batch
      ? await reward.batch(items)
      : await Promise.all(items.map((x) => reward(x.prompt, x.completion)));
    for (const [r, i] of chunk.entries()) {
      const value = values[r];
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error(
          `reward: got ${String(value)} for prompt ${i} ` +
            `(${JSON.stringify(prompts[i].text.slice(0, 60))}) and completion ` +
            `${JSON.stringify(texts[r].slice(0, 60))}; a reward must be a finite number`,
        );
      }
      out[i].push({ ids: g.tokens[r], text: texts[r], reward: value });
    }
    o.onProgress?.(start + chunk.length, rows.length);
  }
  return out;
}
