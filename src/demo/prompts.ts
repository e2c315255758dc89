// Review prefixes the demo's policy completes (the DPO paper's IMDb task: "x is a prefix of a movie
// review", arXiv:2305.18290 Sec. 6.1). A prompt is the first 2-5 words of a review sentence; the
// train / held-out split is the corpus's own (a hash of the sentence), so held-out prompts come from
// sentences the pre-trained model never saw.
import { DEFAULT_CORPUS, reviewSentences } from './corpus.js';
import { REVIEW_SOURCES, ReviewSet } from './sources.js';
import { fnv1a, isHeldOut } from './text.js';

export interface PromptOptions {
  split: 'train' | 'heldout';
  sets: ReviewSet[]; // review sets to draw from; IMDb alone matches the paper
  minWords: number; // shortest prefix, in words
  maxWords: number; // longest prefix (always at least one word of the sentence is left)
  heldOutFraction: number; // must equal the corpus's reviewHeldOutFraction for the split to agree
}

export const DEFAULT_PROMPTS: PromptOptions = {
  split: 'train',
  sets: ['imdb'],
  minWords: 2,
  maxWords: 5,
  heldOutFraction: DEFAULT_CORPUS.reviewHeldOutFraction,
};

export interface Prompt {
  prompt: string; // the prefix, no trailing space (GPT-2 BPE puts the space on the next word)
  sentence: string; // the sentence it was cut from
  label: 0 | 1; // that sentence's human sentiment label (1 = positive)
  source: string; // 'reviews/imdb', ...
}

// Prompts of one split, in file order, duplicates dropped.
function promptsOf(o: PromptOptions, heldOut: boolean): Prompt[] {
  const out: Prompt[] = [];
  const seen = new Set<string>();
  for (const set of o.sets) {
    for (const s of reviewSentences(set)) {
      if (isHeldOut(s.text, o.heldOutFraction) !== heldOut) continue;
      const words = s.text.split(' ');
      if (words.length <= o.minWords) continue;
      // Prefix length: a function of the sentence alone, spread over minWords..maxWords.
      const n = Math.min(o.minWords + (fnv1a(`prefix:${s.text}`) % (o.maxWords - o.minWords + 1)), words.length - 1);
      const prompt = words.slice(0, n).join(' ');
      if (seen.has(prompt)) continue;
      seen.add(prompt);
      out.push({ prompt, sentence: s.text, label: s.label, source: REVIEW_SOURCES[set].id });
    }
  }
  return out;
}

/**
 * Review prefixes for the demo. Train and held-out prompts are disjoint as strings too: a train
 * prompt that equals a held-out one ("This movie is") is dropped from the train side.
 */
export function imdbPrompts(options: Partial<PromptOptions> = {}): Prompt[] {
  const o: PromptOptions = { ...DEFAULT_PROMPTS, ...options };
  if (!(Number.isInteger(o.minWords) && o.minWords >= 1 && Number.isInteger(o.maxWords) && o.maxWords >= o.minWords)) {
    throw new Error(
      `imdbPrompts: minWords ${o.minWords} / maxWords ${o.maxWords} must be integers with 1 <= minWords <= maxWords`,
    );
  }
  if (o.split !== 'train' && o.split !== 'heldout') {
    throw new Error(`imdbPrompts: split is ${JSON.stringify(o.split)} (use "train" or "heldout")`);
  }
  const held = promptsOf(o, true);
  if (o.split === 'heldout') return held;
  const heldSet = new Set(held.map((p) => p.prompt));
  return promptsOf(o, false).filter((p) => !heldSet.has(p.prompt));
}
