// `tsdpo demo`: the DPO paper's controlled-sentiment experiment in miniature (arXiv:2305.18290,
// Sec. 6.1, Fig. 2 left), offline. The committed small GPT-2 is the starting (SFT = reference)
// model; prompts are review prefixes; the reward is the AFINN sentiment of the completion.
//   1. sample k completions per training prompt from the starting model, score them, and pair the
//      best with the worst (ties skipped);
//   2. train DPO at several betas, and Preferred-FT (SFT on the chosen completions), evaluating
//      each at evenly spaced steps on held-out prompts: mean reward, KL(pi || pi_ref), and the win
//      rate against the starting model's samples;
//   3. best-of-N from the starting model's own samples as a second baseline;
//   4. a table, summary.json, an HTML report and the frontier chart as SVG.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { initEngine } from '../engine.js';
import { bestOfN } from '../eval/best-of-n.js';
import { loadModel } from '../models/load.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { completionLogps } from '../eval/kl.js';
import { progress } from '../train/progress.js';
import { evaluatePolicy } from '../eval/evaluate.js';
import { sampleScored } from '../eval/sample.js';
import { checkAgainst, type FrontierCheck, type FrontierPoint } from './frontier.js';
import { checkDemoConfig, defaultDemoModel, type DemoConfig } from './options.js';
import { buildPairs } from './pairs.js';
import { imdbPrompts } from './prompts.js';
import type { ReviewSet } from './sources.js';
import { loadVega } from './charts.js';
import { writeReport } from './report.js';
import { traceRun, type CurvePoint, type Measures, type RunResult } from './runs.js';
import { demoReward, encodeDemoPrompt, type DemoPrompt, type Scored } from './sample.js';
import { shuffled } from './text.js';

/** One line of the results table: a policy's final point. */
export interface RunRow extends Measures {
  name: string;
  kind: 'start' | 'best-of-n' | 'preferred-ft' | 'dpo';
  beta: number | null;
  /** Best-of-N: N and the analytic KL bound log N - (N-1)/N. */
  n?: number;
  klBound?: number;
}

export interface DemoResult {
  config: DemoConfig;
  model: string;
  rows: RunRow[];
  runs: RunResult[];
  start: { reward: number; rewardSe: number; samples: Scored[][] };
  evalPrompts: string[];
  pairs: { count: number; skippedTies: number; prompts: number; meanChosen: number; meanRejected: number };
  /**
   * DPO's points (every checkpoint) against two frontiers: the trained baselines of the paper's
   * figure (starting model + Preferred-FT checkpoints), and best-of-N (starting model + best-of-N).
   */
  frontier: { trained: FrontierCheck; bestOfN: FrontierCheck };
  seconds: Record<string, number>;
  output: string;
}

type Log = (line: string) => void;

const SAMPLE_BATCH = 128; // rows generated together (larger is a little faster, and reserves more memory)

/** `count` prompts of a split (0 = all), in a seeded order. */
function pickPrompts(split: 'train' | 'heldout', sets: ReviewSet[], count: number, seed: number): string[] {
  const all = imdbPrompts({ split, sets }).map((p) => p.prompt);
  return shuffled(all, seed).slice(0, count > 0 ? count : all.length);
}

/** Runs the whole demo and writes its report into cfg.output. */
export async function runDemo(cfg: DemoConfig, opts: { log?: Log } = {}): Promise<DemoResult> {
  const log = opts.log ?? ((l: string) => { if (!cfg.quiet) process.stderr.write(`${l}\n`); });
  const { betas, bestOf } = checkDemoConfig(cfg);
  await loadVega(); // the report's charts need it: fail before minutes of training, not after
  const t0 = performance.now();
  const seconds: Record<string, number> = {};
  let phaseStart = t0;
  const phase = (name: string) => { const now = performance.now(); seconds[name] = (now - phaseStart) / 1000; phaseStart = now; };

  await initEngine({ device: 'cpu', threads: cfg.threads || undefined, log });
  const modelDir = cfg.model || defaultDemoModel();
  const out = resolve(cfg.output);
  mkdirSync(out, { recursive: true });
  const ref = loadModel(modelDir);
  const tok = loadTokenizer(modelDir);
  const padId = tok.padId ?? tok.eosId ?? 0;
  const trainPrompts: DemoPrompt[] = pickPrompts('train', cfg.train_sets as ReviewSet[], cfg.train_prompts, cfg.seed).map((t) => encodeDemoPrompt(tok, t));
  const evalPrompts: DemoPrompt[] = pickPrompts('heldout', ['imdb'], cfg.eval_prompts, cfg.seed).map((t) => encodeDemoPrompt(tok, t));
  // Every generation batch is as wide as the longest prompt of the demo (see SampleOptions.promptWidth).
  const promptWidth = Math.max(...trainPrompts.map((p) => p.ids.length), ...evalPrompts.map((p) => p.ids.length));
  log(`tsdpo demo: starting model ${modelDir} (${ref.family}, ${(countParams(ref) / 1e6).toFixed(2)}M parameters); ` +
    `${trainPrompts.length} training and ${evalPrompts.length} held-out review prefixes; output ${out}`);

  // 1. Preference pairs from the starting model's own samples.
  const bar = (label: string, total: number) => progress(label, total, { silent: cfg.quiet });
  let b = bar(`[1/4] sampling ${cfg.samples_per_prompt} completions x ${trainPrompts.length} prompts`, trainPrompts.length * cfg.samples_per_prompt);
  const groups = await sampleScored(ref, tok, trainPrompts, demoReward, {
    k: cfg.samples_per_prompt, maxNewTokens: cfg.max_new_tokens, seed: cfg.seed + 1, batchSize: SAMPLE_BATCH, promptWidth, onProgress: (d) => b.update(d),
  });
  b.stop();
  const { pairs, skippedTies } = buildPairs(trainPrompts, groups);
  if (pairs.length < cfg.batch_size) {
    throw new Error(`tsdpo demo: only ${pairs.length} preference pairs (${skippedTies} prompts tied); raise --train_prompts or --samples_per_prompt`);
  }
  writeFileSync(join(out, 'pairs.jsonl'), pairs.map((p) => `${JSON.stringify({
    prompt: p.prompt, chosen: p.chosen.text, rejected: p.rejected.text, chosen_reward: p.chosen.reward, rejected_reward: p.rejected.reward,
  })}\n`).join(''));
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
  const pairInfo = {
    count: pairs.length, skippedTies, prompts: trainPrompts.length,
    meanChosen: mean(pairs.map((p) => p.chosen.reward)), meanRejected: mean(pairs.map((p) => p.rejected.reward)),
  };
  log(`      ${pairs.length} pairs (${skippedTies} prompts skipped: all completions tied); mean reward chosen ${pairInfo.meanChosen.toFixed(3)}, rejected ${pairInfo.meanRejected.toFixed(3)}`);
  b = bar('      reference log-probs of the pairs', pairs.length);
  // Reference log-probs of every chosen and rejected completion, once for all runs.
  const items = pairs.flatMap((p) => [{ promptIds: p.promptIds, completionIds: p.chosenIds }, { promptIds: p.promptIds, completionIds: p.rejectedIds }]);
  const flatRef = await completionLogps(ref, items, padId, 64, (d) => b.update(Math.floor(d / 2)));
  const refLogps = pairs.map((_, i) => Float64Array.of(flatRef[2 * i], flatRef[2 * i + 1]));
  b.stop();
  phase('pairs');

  // 2. The starting model on the held-out prompts, and best-of-N from the same samples.
  b = bar(`[2/4] starting model: ${cfg.ref_samples} completions x ${evalPrompts.length} held-out prompts`, evalPrompts.length * cfg.ref_samples);
  const startEval = await evaluatePolicy(ref, ref, tok, evalPrompts, demoReward, {
    samplesPerPrompt: cfg.ref_samples, maxNewTokens: cfg.max_new_tokens, seed: cfg.seed + 2, batchSize: SAMPLE_BATCH, promptWidth, onProgress: (d) => b.update(d),
  });
  b.stop();
  const rewardsPerPrompt = startEval.samples.map((g) => g.map((s) => s.reward));
  const rows: RunRow[] = [{
    name: 'starting model (SFT)', kind: 'start', beta: null, reward: startEval.reward.mean, rewardSe: startEval.reward.se, kl: 0, klSe: 0,
    winRate: 0.5, winRateSe: 0,
  }];
  for (const n of bestOf) {
    const e = bestOfN(rewardsPerPrompt, n);
    rows.push({
      name: `best-of-${n}`, kind: 'best-of-n', beta: null, reward: e.reward, rewardSe: NaN, kl: e.kl, klSe: NaN,
      winRate: e.winRate.mean, winRateSe: e.winRate.se, n, klBound: e.klBound,
    });
  }
  log(`      starting model reward ${startEval.reward.mean.toFixed(3)}; ${rows.slice(1).map((r) => `${r.name} ${r.reward.toFixed(3)} at KL ${r.kl.toFixed(2)}`).join(', ')}`);
  phase('start');

  // 3. Preferred-FT and DPO runs, each evaluated at `checkpoints` evenly spaced steps.
  const settings = {
    modelDir, ref, tok, pairs, refLogps, evalPrompts, baseline: startEval.samples,
    eval: { samplesPerPrompt: cfg.eval_samples, maxNewTokens: cfg.max_new_tokens, seed: cfg.seed + 3, batchSize: SAMPLE_BATCH, promptWidth },
    learningRate: cfg.learning_rate, steps: cfg.steps, batchSize: cfg.batch_size, checkpoints: cfg.checkpoints, seed: cfg.seed,
    outDir: join(out, 'runs'), saveModel: false, quiet: cfg.quiet,
  };
  const plan: [string, number | null][] = [['preferred-ft', null], ...betas.map((beta): [string, number] => [`dpo-beta-${beta}`, beta])];
  const runs: RunResult[] = [];
  for (const [i, [name, beta]] of plan.entries()) {
    log(`[3/4] run ${i + 1} of ${plan.length}: ${beta === null ? 'Preferred-FT (SFT on the chosen completions)' : `DPO, beta ${beta}`}, ${cfg.steps} steps`);
    const r = await traceRun(name, beta, {
      ...settings,
      onPoint: (p: CurvePoint) => log(`      step ${p.step}: reward ${p.reward.toFixed(3)}, KL ${p.kl.toFixed(2)}, win rate ${p.winRate.toFixed(3)}`),
    });
    runs.push(r);
    const { step: _, ...measures } = r.points[r.points.length - 1]; // the final point
    rows.push({ name: beta === null ? 'Preferred-FT' : `DPO beta=${beta}`, kind: r.kind, beta, ...measures });
  }
  phase('runs');

  // 4. The frontier check, the table and the report.
  const start: FrontierPoint = { kl: 0, reward: startEval.reward.mean };
  const dpoPoints = runs.filter((r) => r.kind === 'dpo').map((r) => r.points);
  const frontier = {
    trained: checkAgainst([start, ...runs.filter((r) => r.kind === 'preferred-ft').flatMap((r) => r.points)], dpoPoints),
    bestOfN: checkAgainst([start, ...rows.filter((r) => r.kind === 'best-of-n')], dpoPoints),
  };
  const result: DemoResult = {
    config: cfg, model: modelDir, rows, runs, start: { reward: startEval.reward.mean, rewardSe: startEval.reward.se, samples: startEval.samples },
    evalPrompts: evalPrompts.map((p) => p.text), pairs: pairInfo, frontier, seconds, output: out,
  };
  seconds.total = (performance.now() - t0) / 1000;
  await writeReport(result);
  phase('report');
  seconds.total = (performance.now() - t0) / 1000;
  writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summaryJson(result), null, 2)}\n`);
  log(`[4/4] done in ${seconds.total.toFixed(0)} s`);
  for (const t of ref.params.values()) t.dispose();
  return result;
}

function countParams(m: { params: Map<string, { size: number }> }): number {
  let n = 0;
  for (const t of m.params.values()) n += t.size;
  return n;
}

/** The machine-readable summary: final points of every run, then every checkpoint. */
export function summaryJson(r: DemoResult): Record<string, unknown> {
  const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null);
  return {
    runs: r.rows.map((x) => ({
      name: x.name, beta: x.beta, reward: round(x.reward), kl: round(x.kl), reward_se: round(x.rewardSe), kl_se: round(x.klSe),
      win_rate: round(x.winRate), win_rate_se: round(x.winRateSe),
      ...(x.n ? { n: x.n, kl_bound: round(x.klBound!) } : {}),
    })),
    checkpoints: r.runs.flatMap((run) => run.points.map((p) => ({
      run: run.name, beta: run.beta, step: p.step, reward: round(p.reward), kl: round(p.kl), win_rate: round(p.winRate),
    }))),
    pairs: r.pairs.count,
    frontier: Object.fromEntries(Object.entries(r.frontier).map(([k, c]) => [k === 'bestOfN' ? 'best_of_n' : k, {
      dpo_points: c.points, on_or_above: c.onOrAbove, final_points: c.finals, final_on_or_above: c.finalsOnOrAbove,
    }])),
    seconds: Math.round(r.seconds.total ?? 0),
  };
}
