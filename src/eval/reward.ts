// The demo's ground-truth reward: sentiment of a completion by the AFINN-165 lexicon (the npm
// package `sentiment`, MIT). It stands in for the sentiment classifier of the DPO paper's IMDb
// experiment (arXiv:2305.18290, Sec. 6.1, Fig. 2 left).
//
// Definition: S = AFINN score of the text (sum of word valences in [-5, 5], with `sentiment`'s
// negation rule: "not good" counts -3), and reward = sigmoid(S / AFINN_TEMPERATURE).
// Why this form:
// - bounded in (0, 1), 0.5 = no sentiment words, like a classifier's positive-class probability;
//   S / T plays the part of the classifier's logit;
// - monotone in S, so the preference pairs (ranked by reward) are the pairs ranked by S;
// - not divided by length (unlike `comparative`), so a policy is not rewarded for stopping early;
//   the sigmoid saturates, so stuffing more positive words into a completion pays less and less.
// Score the completion alone (not prompt + completion): the prompt is shared by both completions of
// a pair, so it cannot change which one wins, it would only shift every reward along the sigmoid.
// Many completions have S = 0 and tie at 0.5: a pair builder should skip ties.
import Sentiment from 'sentiment';

/** Scale of the AFINN score: one strongly positive word (+3) gives 0.82, two give 0.95. */
export const AFINN_TEMPERATURE = 2;

const analyzer = new Sentiment();

/** The raw AFINN-165 score of `text` (sum of word valences, `sentiment` package, English). */
export function sentimentScore(text: string): number {
  if (typeof text !== 'string') throw new Error(`sentimentScore: expected a string, got ${typeof text}`);
  return analyzer.analyze(text).score;
}

/** Ground-truth reward of a completion, in (0, 1): sigmoid(AFINN score / AFINN_TEMPERATURE). */
export function reward(text: string): number {
  return 1 / (1 + Math.exp(-sentimentScore(text) / AFINN_TEMPERATURE));
}
