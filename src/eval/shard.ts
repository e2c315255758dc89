// Sharding the embarrassingly parallel stages over processes or machines (a SLURM job array):
// `--shard i/n` takes the i-th of n contiguous parts, and the parts merge into exactly the whole
// run's result. Here: the shard arithmetic, and `tsdpo eval`'s shard files and their merge (the
// summary of an eval run is computed from its per-sample records, so a merged run and a whole run
// go through the same code). The reference log-prob pass's shards are train/ref-shard.ts's.
import { readFileSync } from 'node:fs';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { evaluatePolicy } from './evaluate.js';
import { meanEstimate, type MeanEstimate } from './kl.js';
import type { EvalPrompt, RewardFn } from './sample.js';
import { winRate } from './win-rate.js';

export interface Shard {
  index: number;
  count: number;
}

/** 'i/n' with 0 <= i < n; an error naming the flag otherwise. */
export function parseShard(spec: string, flag = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  const index = m ? Number(m[1]) : NaN,
    count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new Error(
      `${flag} ${JSON.stringify(spec)}: expected i/n with 0 <= i < n (e.g. ` +
        `0/4; in a SLURM array: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)`,
    );
  }
  return { index, count };
}

/**
 * The rows [start, end) of shard s of `total` rows, in whole units of `unit` rows (a batch): the
 * units are split as evenly as possible, so that every shard runs the batches the whole run runs.
 */
export function shardRange(total: number, s: Shard, unit = 1): [number, number] {
  const units = Math.ceil(total / unit);
  const a = Math.floor((units * s.index) / s.count),
    b = Math.floor((units * (s.index + 1)) / s.count);
  return [Math.min(total, a * unit), Math.min(total, b * unit)];
}

/** The rewards and KL terms of one temperature of an eval run. */
export interface TemperatureRun {
  temperature: number;
  /** Rewards [prompt][sample] of the policy's and the reference's samples. */
  policy: readonly (readonly number[])[];
  reference: readonly (readonly number[])[];
  /** log pi - log pi_ref of each policy sample, prompt-major; empty when not estimated (temperature != 1). */
  klTerms: ArrayLike<number>;
}

export interface EvalResult {
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
}

const r4 = (x: number): number | null => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null);

/** The summary `tsdpo eval` prints for one temperature (rounded to 4 decimals; null where undefined). */
export function evalResult(run: TemperatureRun, samplesPerPrompt: number): EvalResult {
  const pol = meanEstimate(run.policy.flat()),
    ref = meanEstimate(run.reference.flat());
  const kl: MeanEstimate = run.klTerms.length ? meanEstimate(run.klTerms) : { mean: NaN, se: NaN, n: 0 };
  const win = winRate(run.policy, run.reference);
  return {
    prompts: run.policy.length,
    samples_per_prompt: samplesPerPrompt,
    temperature: run.temperature,
    policy_reward: r4(pol.mean),
    policy_reward_se: r4(pol.se),
    reference_reward: r4(ref.mean),
    reference_reward_se: r4(ref.se),
    kl: r4(kl.mean),
    kl_se: r4(kl.se),
    win_rate: r4(win.mean),
    win_rate_se: r4(win.se),
  };
}

/** The text summary of one temperature. */
export function formatResult(r: EvalResult, reward: string): string {
  const pm = (x: number | null, se: number | null, d: number) =>
    x === null ? '-' : `${x.toFixed(d)}${se === null ? '' : ` ± ${se.toFixed(d)}`}`;
  return (
    [
      `${r.prompts} prompts x ${r.samples_per_prompt} samples ` +
        `per model, temperature ${r.temperature}, reward ${reward}`,
      `policy     reward ${pm(r.policy_reward, r.policy_reward_se, 3)}   KL(policy || reference) ` +
        `${r.temperature === 1 ? `${pm(r.kl, r.kl_se, 3)} nats` : '- (estimated at temperature 1 only)'}`,
      `reference  reward ${pm(r.reference_reward, r.reference_reward_se, 3)}`,
      `win rate of the policy against the reference: ${pm(r.win_rate, r.win_rate_se, 3)} (ties count 1/2)`,
    ].join('\n') + '\n\n'
  );
}

/** One sample line of --output: what `tsdpo eval` writes (shard files add prompt_index, sample and kl_term). */
export interface SampleLine {
  prompt: string;
  model: 'policy' | 'reference';
  temperature: number;
  completion: string;
  reward: number;
  prompt_index?: number;
  sample?: number;
  kl_term?: number;
}

/** The first line of a shard file: which part of which run it holds. */
export interface ShardHeader {
  shard: string;
  /** Prompts of the whole run, and this shard's [first, end). */
  prompts: number;
  first_prompt: number;
  end_prompt: number;
  /** The run's settings: shards merge only when these agree. */
  settings: Record<string, unknown>;
}

/** The lines of a shard file (header first), from the samples of each temperature of this shard's prompts. */
export function shardLines(header: ShardHeader, samples: SampleLine[]): string {
  return [{ tsdpo_eval_shard: header }, ...samples].map((l) => `${JSON.stringify(l)}\n`).join('');
}

/**
 * Part `shard` of an eval run over `all` prompts, at each temperature: the policy's and the reference's
 * samples of this part's prompts with their rewards and (policy, temperature 1) KL terms. Row seeds and
 * the whole run's prompt width make these exactly the whole run's samples of those prompts.
 */
export async function evaluateShard(
  policy: CausalLM,
  reference: CausalLM,
  tok: TextTokenizer,
  all: readonly EvalPrompt[],
  reward: RewardFn,
  shard: Shard,
  o: { samples: number; max_new_tokens: number; seed: number; batch_size: number; temperatures: readonly number[] },
): Promise<{ header: Omit<ShardHeader, 'settings'>; samples: SampleLine[] }> {
  const [first, end] = shardRange(all.length, shard);
  const prompts = all.slice(first, end),
    samples: SampleLine[] = [];
  for (const temperature of o.temperatures) {
    const opts = {
      samplesPerPrompt: o.samples,
      maxNewTokens: o.max_new_tokens,
      seed: o.seed,
      batchSize: o.batch_size,
      temperature,
      eosIds: tok.eosIds,
      rowSeeds: { firstPrompt: first },
      promptWidth: Math.max(...all.map((p) => p.ids.length)),
    };
    const pol = await evaluatePolicy(policy, reference, tok, prompts, reward, opts);
    const ref = await evaluatePolicy(reference, reference, tok, prompts, reward, opts);
    for (const [name, e] of [
      ['policy', pol],
      ['reference', ref],
    ] as const) {
      e.samples.forEach((g, i) =>
        g.forEach((x, j) =>
          samples.push({
            prompt: prompts[i].text,
            model: name,
            temperature,
            completion: x.text,
            reward: x.reward,
            prompt_index: first + i,
            sample: j,
            ...(name === 'policy' && pol.klTerms.length ? { kl_term: pol.klTerms[i * o.samples + j] } : {}),
          }),
        ),
      );
    }
  }
  return {
    header: { shard: `${shard.index}/${shard.count}`, prompts: all.length, first_prompt: first, end_prompt: end },
    samples,
  };
}

function readShard(file: string): { header: ShardHeader; lines: SampleLine[] } {
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const parse = (l: string, i: number): Record<string, unknown> => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
  };
  const first = rows.length ? parse(rows[0], 0) : {};
  const header = first.tsdpo_eval_shard as ShardHeader | undefined;
  if (!header)
    throw new Error(
      `${file}:1: not a shard file of tsdpo eval (its first line has no ` +
        `tsdpo_eval_shard; write one with tsdpo eval --shard i/n --output FILE)`,
    );
  const lines = rows.slice(1).map((l, i) => parse(l, i + 1) as unknown as SampleLine);
  lines.forEach((l, i) => {
    if (typeof l.prompt_index !== 'number' || typeof l.sample !== 'number' || typeof l.reward !== 'number') {
      throw new Error(`${file}:${i + 2}: a sample line needs prompt_index, sample and reward`);
    }
  });
  return { header, lines };
}

/**
 * Merges the shard files of one eval run (every part i of n exactly once, the same settings) into the
 * whole run: the results per temperature and the sample lines in the order `tsdpo eval --output`
 * writes them.
 */
export function mergeEvalShards(files: readonly string[]): {
  results: EvalResult[];
  samples: SampleLine[];
  settings: Record<string, unknown>;
} {
  if (files.length === 0) throw new Error('merge-shards: give the shard files of one run');
  const shards = files.map((f) => ({ file: f, ...readShard(f) }));
  const n = parseShard(shards[0].header.shard, `${files[0]}: shard`).count;
  const seen = new Map<number, string>();
  const settings = JSON.stringify(shards[0].header.settings);
  for (const s of shards) {
    const sh = parseShard(s.header.shard, `${s.file}: shard`);
    if (sh.count !== n)
      throw new Error(
        `merge-shards: ${s.file} is part ${s.header.shard}, ${files[0]} ` +
          `part ${shards[0].header.shard}: shards of different splits`,
      );
    if (seen.has(sh.index))
      throw new Error(`merge-shards: part ${s.header.shard} given twice (${seen.get(sh.index)} and ${s.file})`);
    if (JSON.stringify(s.header.settings) !== settings)
      throw new Error(
        `merge-shards: ${s.file} was run with other settings than ` +
          `${files[0]} (${JSON.stringify(s.header.settings)} vs ${settings})`,
      );
    seen.set(sh.index, s.file);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length) throw new Error(`merge-shards: parts ${missing.map((i) => `${i}/${n}`).join(', ')} are missing`);
  const all = shards.flatMap((s) => s.lines);
  const P = shards[0].header.prompts,
    k = Number(shards[0].header.settings.samples_per_prompt);
  const temperatures = [...new Set(all.map((l) => l.temperature))];
  const results: EvalResult[] = [],
    samples: SampleLine[] = [];
  for (const temperature of temperatures) {
    const grid = (model: 'policy' | 'reference'): SampleLine[][] => {
      const g: SampleLine[][] = Array.from({ length: P }, () => []);
      for (const l of all) if (l.temperature === temperature && l.model === model) g[l.prompt_index!][l.sample!] = l;
      g.forEach((row, i) => {
        for (let j = 0; j < k; j++)
          if (!row[j])
            throw new Error(`merge-shards: no ${model} sample ${j} of prompt ${i} at temperature ${temperature}`);
      });
      return g;
    };
    const pol = grid('policy'),
      ref = grid('reference');
    const klTerms = pol.flat().every((l) => typeof l.kl_term === 'number') ? pol.flat().map((l) => l.kl_term!) : [];
    results.push(
      evalResult(
        {
          temperature,
          policy: pol.map((g) => g.map((l) => l.reward)),
          reference: ref.map((g) => g.map((l) => l.reward)),
          klTerms,
        },
        k,
      ),
    );
    for (const l of [...pol.flat(), ...ref.flat()]) {
      samples.push({
        prompt: l.prompt,
        model: l.model,
        temperature: l.temperature,
        completion: l.completion,
        reward: l.reward,
      });
    }
  }
  return { results, samples, settings: shards[0].header.settings };
}
