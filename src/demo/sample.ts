// The demo's prompts and reward: review prefixes after an EOS, judged by the sentiment of the
// completion. Sampling and scoring are src/eval/sample.ts.
import type { EvalPrompt, RewardFn } from '../eval/sample.js';
import { reward } from '../eval/reward.js';
import type { TextTokenizer } from '../tokenizer/types.js';

export type { Scored } from '../eval/sample.js';

/** A demo prompt: EOS first (documents start after <|endoftext|> in pre-training), then the text. */
export type DemoPrompt = EvalPrompt;

export function encodeDemoPrompt(tok: TextTokenizer, text: string): DemoPrompt {
  const bos = tok.bosId ?? tok.eosId;
  if (bos === null) throw new Error(`encodeDemoPrompt: the tokenizer of ${tok.source} has neither BOS nor EOS`);
  return { text, ids: [bos, ...tok.encode(text, { addSpecialTokens: false })] };
}

/** The demo's judge: the sentiment reward of the completion alone (src/eval/reward.ts says why). */
export const demoReward: RewardFn = (_prompt, completion) => reward(completion);
