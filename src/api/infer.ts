// Using a model: continuations of prompts (`generate`), log-probs of completions and of preference
// pairs (`logprobs`, `pairLogprobs`) and a policy against its reference judged by a reward
// (`evaluate`). What `tsdpo generate`, `tsdpo logprobs` and `tsdpo eval` print, for rows in memory.
import { tidyAsync } from '../core/index.js';
import { Rng } from '../core/random.js';
import { padIdFor } from '../data/collate.js';
import { DataError, type Where } from '../data/errors.js';
import { preparePreferenceDataset, type PreferenceDataOptions } from '../data/pipeline.js';
import { encodeCompletion, encodePrompt } from '../data/tokenize.js';
import { evaluatePolicy, samplesWinRate } from '../eval/evaluate.js';
import { generate as generateIds } from '../eval/generate.js';
import type { EvalPrompt, RewardFn } from '../eval/sample.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { computeReferenceLogps } from '../train/dpo.js';
import { sequenceLogps } from '../train/logps.js';

export type { RewardFn } from '../eval/sample.js';

/** Decoding options, with transformers' names (GenerationConfig). */
export interface GenerateOptions {
  /** Tokens to generate per prompt (default 32). */
  max_new_tokens?: number;
  /** Sample instead of greedy decoding (default false). */
  do_sample?: boolean;
  /** Sampling temperature (default 1). */
  temperature?: number;
  /** Keep the k most likely tokens (0 = off, the default). */
  top_k?: number;
  /** Nucleus sampling mass (1 = off, the default). */
  top_p?: number;
  /** Seed of the sampling (default 0). */
  seed?: number;
  /** Wrap each prompt in the tokenizer's chat template as a user message (default false). */
  chat?: boolean;
}

/** One prompt's continuation: its text (special tokens dropped) and token ids (EOS included when reached). */
export interface Completion {
  prompt: string;
  completion: string;
  tokens: number[];
}

/** Continues each prompt with `model` (a KV cache; prompts batched together). */
export async function generate(
  model: CausalLM,
  tokenizer: TextTokenizer,
  prompts: readonly string[],
  o: GenerateOptions = {},
): Promise<Completion[]> {
  const ids = prompts.map((p) =>
    encodePrompt(
      tokenizer,
      o.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true }) : p,
    ),
  );
  const out = await generateIds(model, ids, {
    maxNewTokens: o.max_new_tokens ?? 32,
    doSample: o.do_sample ?? false,
    temperature: o.temperature ?? 1,
    topK: o.top_k ?? 0,
    topP: o.top_p ?? 1,
    eosIds: tokenizer.eosIds,
    padId: tokenizer.padId ?? tokenizer.eosId ?? 0,
    rng: new Rng(o.seed ?? 0),
  });
  return prompts.map((prompt, i) => ({
    prompt,
    completion: tokenizer.decode(out.tokens[i], { skipSpecialTokens: true }),
    tokens: out.tokens[i],
  }));
}

/**
 * A sequence to score: token ids with a 0/1 mask of the scored (completion) positions, or prompt + completion texts.
 */
export type SequenceRow = { input_ids: number[]; completion_mask: number[] } | { prompt: string; completion: string };

/** A sequence's summed completion log-prob and its number of completion tokens. */
export interface SequenceLogprob {
  logp: number;
  tokens: number;
}

/**
 * Ids and mask of one row, checked; text rows are tokenized as for DPO (EOS after the completion). Errors start with
 * `where`.
 */
export function sequenceIds(
  row: unknown,
  where: string,
  vocab: number,
  tok: () => TextTokenizer,
): { ids: number[]; mask: number[] } {
  const bad = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (row === null || typeof row !== 'object' || Array.isArray(row)) bad('expected an object');
  const o = row as Record<string, unknown>;
  if (Array.isArray(o.input_ids)) {
    const ids = o.input_ids,
      mask = o.completion_mask;
    if (!Array.isArray(mask)) return bad('field completion_mask is missing (an array aligned with input_ids)');
    if (mask.length !== ids.length) bad(`completion_mask has ${mask.length} entries, input_ids ${ids.length}`);
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocab)
        bad(`input_ids[${i}] = ${JSON.stringify(id)} is not a token id in [0, ${vocab})`);
    });
    if (mask.some((m) => m !== 0 && m !== 1)) bad('completion_mask must hold 0 and 1');
    return { ids: ids as number[], mask: mask as number[] };
  }
  if (typeof o.prompt === 'string' && typeof o.completion === 'string') {
    const t = tok();
    const p = encodePrompt(t, o.prompt),
      c = encodeCompletion(t, o.completion);
    return { ids: [...p, ...c], mask: [...p.map(() => 0), ...c.map(() => 1)] };
  }
  return bad('expected fields input_ids + completion_mask, or prompt + completion (strings)');
}

/**
 * Summed log-probs of the completion tokens of each row under `model` (its adapter on), in one
 * forward pass per batch of `batchSize` rows (default 8). `tokenizer` is needed for text rows only.
 */
export async function logprobs(
  model: CausalLM,
  rows: readonly SequenceRow[],
  o: { tokenizer?: TextTokenizer; batchSize?: number; label?: string } = {},
): Promise<SequenceLogprob[]> {
  const tok = (): TextTokenizer =>
    o.tokenizer ??
    (() => {
      throw new Error('logprobs: text rows (prompt + completion) need the tokenizer option');
    })();
  const label = o.label ?? 'rows';
  const parsed = rows.map((r, i) => sequenceIds(r, `${label}[${i}]`, model.vocabSize, tok));
  const out: SequenceLogprob[] = [];
  const bs = Math.max(1, o.batchSize ?? 8);
  for (let s = 0; s < parsed.length; s += bs) {
    const batch = parsed.slice(s, s + bs);
    const T = Math.max(...batch.map((r) => r.ids.length)),
      R = batch.length;
    const ids = new Int32Array(R * T),
      att = new Int32Array(R * T),
      comp = new Float32Array(R * T);
    batch.forEach((r, i) =>
      r.ids.forEach((id, t) => {
        ids[i * T + t] = id;
        att[i * T + t] = 1;
        comp[i * T + t] = r.mask[t];
      }),
    );
    const res = await tidyAsync(async () => {
      const l = sequenceLogps(
        model,
        { rows: R, T, inputIds: ids, attentionMask: att, completionMask: comp },
        { headOnCompletion: true },
      );
      return { seq: await l.seq.toArray(), tokens: l.tokens };
    });
    for (let i = 0; i < R; i++) out.push({ logp: res.seq[i], tokens: res.tokens[i] });
  }
  return out;
}

/** A preference pair's log-probs; with a reference also its log-probs and the log-ratio margin (no beta). */
export interface PairLogprob {
  chosen_logp: number;
  rejected_logp: number;
  chosen_tokens: number;
  rejected_tokens: number;
  ref_chosen_logp?: number;
  ref_rejected_logp?: number;
  /** (chosen_logp - ref_chosen_logp) - (rejected_logp - ref_rejected_logp): TRL's rewards/margins over beta. */
  margin?: number;
}

/**
 * Log-probs of each pair's chosen and rejected completion, tokenized as DPO tokenizes them
 * (preference rows of any format of docs/data.md). The reference: `reference`, or with
 * `adapterOff` the model itself with its LoRA adapter off; none by default.
 */
export async function pairLogprobs(
  model: CausalLM,
  tokenizer: TextTokenizer,
  rows: readonly unknown[],
  o: { reference?: CausalLM; adapterOff?: boolean; batchSize?: number; data?: PreferenceDataOptions } = {},
): Promise<PairLogprob[]> {
  const data = preparePreferenceDataset([...rows], tokenizer, o.data);
  return pairLogprobsOf(model, data.examples, padIdFor(tokenizer), o);
}

/** pairLogprobs on pairs already tokenized. */
export async function pairLogprobsOf(
  model: CausalLM,
  examples: Parameters<typeof computeReferenceLogps>[2],
  padId: number,
  o: { reference?: CausalLM; adapterOff?: boolean; batchSize?: number } = {},
): Promise<PairLogprob[]> {
  const bs = Math.max(1, o.batchSize ?? 8);
  const policy = await computeReferenceLogps(model, false, examples, padId, bs);
  const ref = o.reference
    ? await computeReferenceLogps(o.reference, true, examples, padId, bs)
    : o.adapterOff
      ? await computeReferenceLogps(model, true, examples, padId, bs)
      : null;
  return examples.map((e, i) => {
    const [pc, pr] = policy[i];
    const line: PairLogprob = {
      chosen_logp: pc,
      rejected_logp: pr,
      chosen_tokens: e.chosenIds.length,
      rejected_tokens: e.rejectedIds.length,
    };
    if (ref) {
      const [rc, rr] = ref[i];
      Object.assign(line, { ref_chosen_logp: rc, ref_rejected_logp: rr, margin: pc - rc - (pr - rr) });
    }
    return line;
  });
}

/** Options of `evaluate`, with `tsdpo eval`'s names and defaults. */
export interface EvaluateOptions {
  /** Completions per prompt from each model (default 4). */
  samples?: number;
  /** Tokens per completion (default 32). */
  max_new_tokens?: number;
  /** Sampling temperature (default 1; KL is estimated only at 1). */
  temperature?: number;
  /** Sampling seed (default 0); both models sample with the same random numbers. */
  seed?: number;
  /** Sequences generated together (default 32). */
  batch_size?: number;
  /** Called with completions done and total, per model. */
  onProgress?: (model: 'policy' | 'reference', done: number, total: number) => void;
}

/** `evaluate`'s result, rounded to 4 decimals as `tsdpo eval --json` prints it (null: not estimated). */
export interface EvaluateResult {
  prompts: number;
  samples_per_prompt: number;
  temperature: number;
  policy_reward: number | null;
  policy_reward_se: number | null;
  reference_reward: number | null;
  reference_reward_se: number | null;
  kl: number | null;
  kl_se: number | null;
  win_rate: number | null;
  win_rate_se: number | null;
  /** Every completion: [prompt][sample] for each model. */
  completions: { policy: { text: string; reward: number }[][]; reference: { text: string; reward: number }[][] };
}

/**
 * Prompts as the models see them; a prompt that leaves no room for maxNewTokens within maxPositions is an error naming
 * it.
 */
export function evalPrompts(
  tok: TextTokenizer,
  texts: readonly { text: string; where: Where }[],
  maxNewTokens: number,
  maxPositions = Infinity,
  field: string | null = null,
): EvalPrompt[] {
  return texts.map(({ text, where }) => {
    const ids = encodePrompt(tok, text);
    if (ids.length === 0)
      throw new DataError(where, field, 'gives no tokens (the tokenizer adds no BOS to start from)');
    if (ids.length + maxNewTokens > maxPositions) {
      throw new DataError(
        where,
        field,
        `the prompt has ${ids.length} tokens; with --max_new_tokens ${maxNewTokens} it needs ` +
          `${ids.length + maxNewTokens} positions, above the model's ` +
          `${maxPositions} (n_positions): shorten it or lower --max_new_tokens`,
      );
    }
    return { text, ids };
  });
}

/**
 * A policy against its reference on prompts, judged by `reward` (the DPO paper's measures, Sec. 6):
 * mean reward of each model's samples, KL(policy || reference) on the policy's samples, and the
 * policy's win rate against the reference's samples (ties 1/2).
 */
export async function evaluate(
  policy: CausalLM,
  reference: CausalLM,
  tokenizer: TextTokenizer,
  prompts: readonly string[] | readonly EvalPrompt[],
  reward: RewardFn,
  o: EvaluateOptions = {},
): Promise<EvaluateResult> {
  const samples = o.samples ?? 4,
    maxNewTokens = o.max_new_tokens ?? 32,
    temperature = o.temperature ?? 1;
  const positions = Number(policy.config.n_positions ?? Infinity);
  const ps = prompts.map((p, row) =>
    typeof p === 'string'
      ? evalPrompts(tokenizer, [{ text: p, where: { file: '<prompts>', row } }], maxNewTokens, positions)[0]
      : p,
  );
  // Row seeds: each completion draws from its own generator, so a prompt's samples do not depend on its
  // batch, and a shard of the prompts (eval/shard.ts) gives the whole run's samples.
  const opts = {
    samplesPerPrompt: samples,
    maxNewTokens,
    seed: o.seed ?? 0,
    batchSize: o.batch_size ?? 32,
    temperature,
    eosIds: tokenizer.eosIds,
    rowSeeds: { firstPrompt: 0 },
  };
  const pol = await evaluatePolicy(policy, reference, tokenizer, ps, reward, {
    ...opts,
    onProgress: (d, n) => o.onProgress?.('policy', d, n),
  });
  const ref = await evaluatePolicy(reference, reference, tokenizer, ps, reward, {
    ...opts,
    onProgress: (d, n) => o.onProgress?.('reference', d, n),
  });
  const win = samplesWinRate(pol.samples, ref.samples);
  const r4 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null);
  const texts = (s: typeof pol.samples) => s.map((g) => g.map((x) => ({ text: x.text, reward: x.reward })));
  return {
    prompts: ps.length,
    samples_per_prompt: samples,
    temperature,
    policy_reward: r4(pol.reward.mean),
    policy_reward_se: r4(pol.reward.se),
    reference_reward: r4(ref.reward.mean),
    reference_reward_se: r4(ref.reward.se),
    kl: r4(pol.kl.mean),
    kl_se: r4(pol.kl.se),
    win_rate: r4(win.mean),
    win_rate_se: r4(win.se),
    completions: { policy: texts(pol.samples), reference: texts(ref.samples) },
  };
}
