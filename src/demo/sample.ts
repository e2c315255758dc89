// Completions of review prompts sampled from a model and scored by the demo's reward: the data of
// every phase of the demo (preference pairs, evaluation, best-of-N).
import { tidyAsync } from '../core/index.js';
import { Rng } from '../core/random.js';
import { generate } from '../eval/generate.js';
import { reward } from '../eval/reward.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';

/** A prompt as the model sees it: EOS first (documents start after <|endoftext|> in pre-training), then the text. */
export interface DemoPrompt {
  text: string;
  ids: number[];
}

/** One sampled completion: its tokens (EOS included when reached), text (specials dropped) and reward. */
export interface Scored {
  ids: number[];
  text: string;
  reward: number;
}

export function encodeDemoPrompt(tok: TextTokenizer, text: string): DemoPrompt {
  const bos = tok.bosId ?? tok.eosId;
  if (bos === null) throw new Error(`encodeDemoPrompt: the tokenizer of ${tok.source} has neither BOS nor EOS`);
  return { text, ids: [bos, ...tok.encode(text, { addSpecialTokens: false })] };
}

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
  onProgress?: (done: number, total: number) => void;
}

/**
 * k completions of each prompt by plain sampling (temperature 1, no top-k / top-p: the samples follow
 * the model's own distribution, as the KL estimate needs). Returns [prompt][k].
 */
export async function sampleScored(model: CausalLM, tok: TextTokenizer, prompts: readonly DemoPrompt[], o: SampleOptions): Promise<Scored[][]> {
  const eos = tok.eosId;
  if (eos === null) throw new Error(`sampleScored: the tokenizer of ${tok.source} has no EOS token`);
  const rows: number[] = [];
  prompts.forEach((_, i) => { for (let j = 0; j < o.k; j++) rows.push(i); });
  const rng = new Rng(o.seed);
  const out: Scored[][] = prompts.map(() => []);
  const batches = Math.ceil(rows.length / o.batchSize), size = Math.ceil(rows.length / Math.max(1, batches));
  const width = Math.max(o.promptWidth ?? 0, ...prompts.map((p) => p.ids.length));
  for (let start = 0; start < rows.length; start += size) {
    const chunk = rows.slice(start, start + size);
    const ids = chunk.map((i) => prompts[i].ids);
    // Pad the last batch to the common size and add the width row (both dropped below).
    while (ids.length < size) ids.push(prompts[chunk[0]].ids);
    ids.push(new Array<number>(width).fill(eos));
    const g = await tidyAsync(() => generate(model, ids, {
      maxNewTokens: o.maxNewTokens, doSample: true, temperature: 1, topK: 0, topP: 1, eosIds: [eos], padId: eos, rng,
    }));
    chunk.forEach((i, r) => {
      const ids = g.tokens[r];
      const text = tok.decode(ids, { skipSpecialTokens: true });
      out[i].push({ ids, text, reward: reward(text) });
    });
    o.onProgress?.(start + chunk.length, rows.length);
  }
  return out;
}
