// Reward functions of GRPO / RLOO, as TRL's reward_funcs: each scores a batch of completions at
// once and returns one finite number per completion. A spec is 'sentiment', a reward model folder
// or a JS module; a bad return value is an error naming the function and the prompt.
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { reward as sentimentReward } from '../eval/reward.js';
import { loadRewardModel, rewardModelJudge } from '../eval/reward-model.js';

/** One batch to score: prompts and completions as the dataset has them (text, or chat messages). */
export interface RewardBatch {
  /** The prompt as the dataset gives it (a string, or a list of messages). */
  prompts: unknown[];
  /** The prompt as text (what a reward model reads, and what error messages quote). */
  promptTexts: string[];
  /** Completion text (special tokens dropped), or [{ role: 'assistant', content }] for chat prompts. */
  completions: unknown[];
  completionTexts: string[];
  completionIds: number[][];
  /** The dataset's other columns, one value per completion. */
  columns: Record<string, unknown[]>;
}

export interface RewardFunc {
  /** As TRL names it in rewards/<name>/mean: the function's name, or a model folder's base name. */
  name: string;
  /** What the user gave (for error messages). */
  spec: string;
  score(batch: RewardBatch): Promise<number[]>;
}

type ModuleFn = (prompts: unknown[], completions: unknown[], extra: Record<string, unknown>) => unknown;

async function loadOne(spec: string): Promise<RewardFunc> {
  if (spec === 'sentiment') {
    return { name: 'sentiment', spec, score: async (b) => b.completionTexts.map((c) => sentimentReward(c)) };
  }
  if (existsSync(spec) && statSync(spec).isDirectory()) {
    const judge = rewardModelJudge(loadRewardModel(spec));
    return {
      name: basename(resolve(spec)),
      spec,
      score: (b) => judge.batch(b.promptTexts.map((prompt, i) => ({ prompt, completion: b.completionTexts[i] }))),
    };
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(spec)).href)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(
      `--reward_funcs ${spec}: cannot load the module (${(e as Error).message}); give 'sentiment', a reward model folder or a .js/.mjs file`,
    );
  }
  const fn = (mod.default ?? mod.reward) as ModuleFn | undefined;
  if (typeof fn !== 'function') {
    throw new Error(
      `--reward_funcs ${spec}: the module exports no function (export default (prompts, completions, extra) => number[])`,
    );
  }
  return {
    name: fn.name && fn.name !== 'default' ? fn.name : basename(spec).replace(/\.[cm]?js$/, ''),
    spec,
    score: async (b) => {
      const out = await fn(b.prompts, b.completions, { completion_ids: b.completionIds, ...b.columns });
      return out as number[];
    },
  };
}

/** The reward functions of --reward_funcs, with their weights (--reward_weights, default 1 each). */
export async function loadRewardFuncs(
  specs: readonly string[],
  weights: readonly string[],
): Promise<{ funcs: RewardFunc[]; weights: number[] }> {
  if (specs.length === 0)
    throw new Error('--reward_funcs: give at least one reward (sentiment, a reward model folder or a .js module)');
  if (weights.length > 0 && weights.length !== specs.length) {
    throw new Error(
      `--reward_weights has ${weights.length} values for ${specs.length} reward functions (${specs.join(', ')})`,
    );
  }
  const w = weights.length ? weights.map((x) => Number(x)) : specs.map(() => 1);
  w.forEach((x, i) => {
    if (!Number.isFinite(x)) throw new Error(`--reward_weights: '${weights[i]}' is not a number`);
  });
  const funcs: RewardFunc[] = [];
  for (const s of specs) funcs.push(await loadOne(s));
  return { funcs, weights: w };
}

const quote = (s: string): string => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);

/** Rewards [completion][function]; any throw, wrong length or non-finite value is an error naming the function and prompt. */
export async function scoreAll(funcs: readonly RewardFunc[], b: RewardBatch): Promise<number[][]> {
  const N = b.completionTexts.length;
  const out = Array.from({ length: N }, () => new Array<number>(funcs.length));
  for (const [j, f] of funcs.entries()) {
    let values: unknown;
    try {
      values = await f.score(b);
    } catch (e) {
      throw new Error(
        `reward function ${f.name} (${f.spec}) threw on a batch of ${N} completions (first prompt ${quote(b.promptTexts[0])}): ${(e as Error).message}`,
      );
    }
    if (!Array.isArray(values) && !ArrayBuffer.isView(values)) {
      throw new Error(
        `reward function ${f.name} (${f.spec}) returned ${typeof values}; expected an array of ${N} numbers, one per completion`,
      );
    }
    const arr = values as ArrayLike<unknown>;
    if (arr.length !== N) {
      throw new Error(
        `reward function ${f.name} (${f.spec}) returned ${arr.length} rewards for ${N} completions ` +
          `(first prompt ${quote(b.promptTexts[0])}); return one number per completion`,
      );
    }
    for (let i = 0; i < N; i++) {
      const v = arr[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new Error(
          `reward function ${f.name} (${f.spec}) returned ${String(v)} for completion ${i} of prompt ${quote(b.promptTexts[i])} ` +
            `(completion ${quote(b.completionTexts[i])}); a reward must be a finite number`,
        );
      }
      out[i][j] = v;
    }
  }
  return out;
}
