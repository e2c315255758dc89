// `tsdpo demo`: the DPO paper's controlled-sentiment experiment in miniature (arXiv:2305.18290,
// Sec. 6.1, Fig. 2 left and right, Fig. 3), offline. The committed small GPT-2 is the starting (SFT =
// reference) model; prompts are review prefixes; the reward is the AFINN sentiment of the completion.
//   1. sample k completions per training prompt from the starting model, score them, and pair the
//      best with the worst (ties skipped);
//   2. the starting model on held-out prompts, best-of-N from its samples, and the held-out prompts'
//      own "dataset" (best of k samples: the chosen completions the win rates are measured against);
//   3. a reward model on all pairs of the training samples (rlhf.ts);
//   4. Preferred-FT, DPO at several betas, Unlikelihood, PPO (learned reward model) and PPO-GT (the
//      ground-truth reward), each evaluated at evenly spaced steps on the held-out prompts: mean
//      reward, KL(pi || pi_ref), win rate against the starting model's samples; win rates against the
//      chosen completions by temperature (DPO, PPO, Preferred-FT) and over DPO's training;
//   5. a table, summary.json, an HTML report and the charts as SVG.
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
import { loadRewardModel } from '../eval/reward-model.js';
import { rewardModelAccuracy, tracePpo, trainRewardModel, type RewardModelResult } from './rlhf.js';
import { chosenRewards, winByTemperature, winVsChosen } from './winrates.js';
import type { CausalLM } from '../models/model.js';
import { checkDemoConfig, defaultDemoModel, type DemoConfig } from './options.js';
import { buildPairs } from './pairs.js';
import { imdbPrompts } from './prompts.js';
import type { ReviewSet } from './sources.js';
import { loadVega } from './charts.js';
import { writeReport } from './report.js';
import { traceRun, type CurvePoint, type Measures, type RunKind, type RunResult, type RunSpec } from './runs.js';
import { demoReward, encodeDemoPrompt, type DemoPrompt, type Scored } from './sample.js';
import { shuffled } from './text.js';

/** One line of the results table: a policy's final point. */
export interface RunRow extends Measures {
  name: string;
  kind: 'start' | 'best-of-n' | RunKind;
  /** DPO's beta, or PPO's KL coefficient. */
  beta: number | null;
  /** Unlikelihood's alpha. */
  alpha?: number;
  /** PPO with the learned reward model: that model's mean score of the final samples. */
  rmScore?: number;
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
  frontier: { trained: FrontierCheck; bestOfN: FrontierCheck; ppo?: FrontierCheck; ppoGt?: FrontierCheck };
  /** The reward model PPO trains against, and its accuracy against the ground truth on held-out prompts. */
  rewardModel?: RewardModelResult & { accuracy: number; accuracySe: number; accuracyPairs: number };
  /** Win rates against the held-out prompts' chosen completions. */
  winRates?: WinRates;
  seconds: Record<string, number>;
  output: string;
}

/** Win rate (mean, standard error over prompts) against the held-out chosen completions. */
export interface WinPoint {
  winRate: number;
  winRateSe: number;
}

export interface WinRates {
  /** Held-out prompts with a chosen completion (the others' samples all tied). */
  prompts: number;
  temperatures: number[];
  /**
   * One series per policy (the starting model, Preferred-FT, DPO and PPO at their middle strength): a point per
   * temperature.
   */
  byTemperature: { name: string; points: WinPoint[] }[];
  /** DPO at its middle beta, over training: at steps 0 (the starting model) and each evaluation, per temperature. */
  overTraining: { name: string; temperatures: number[]; points: ({ step: number } & Record<string, number>)[] };
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
  const log =
    opts.log ??
    ((l: string) => {
      if (!cfg.quiet) process.stderr.write(`${l}\n`);
    });
  const checks = checkDemoConfig(cfg);
  const { bestOf } = checks;
  await loadVega(); // the report's charts need it: fail before minutes of training, not after
  const t0 = performance.now();
  const seconds: Record<string, number> = {};
  let phaseStart = t0;
  const phase = (name: string) => {
    const now = performance.now();
    seconds[name] = (now - phaseStart) / 1000;
    phaseStart = now;
  };

  await initEngine({ device: 'cpu', threads: cfg.threads || undefined, log });
  const modelDir = cfg.model || defaultDemoModel();
  const out = resolve(cfg.output);
  mkdirSync(out, { recursive: true });
  const ref = loadModel(modelDir);
  const tok = loadTokenizer(modelDir);
  const padId = tok.padId ?? tok.eosId ?? 0;
  const trainPrompts: DemoPrompt[] = pickPrompts(
    'train',
    cfg.train_sets as ReviewSet[],
    cfg.train_prompts,
    cfg.seed,
  ).map((t) => encodeDemoPrompt(tok, t));
  const evalPrompts: DemoPrompt[] = pickPrompts('heldout', ['imdb'], cfg.eval_prompts, cfg.seed).map((t) =>
    encodeDemoPrompt(tok, t),
  );
  // Every generation batch is as wide as the longest prompt of the demo (see SampleOptions.promptWidth).
  const promptWidth = Math.max(...trainPrompts.map((p) => p.ids.length), ...evalPrompts.map((p) => p.ids.length));
  log(
    `tsdpo demo: starting model ${modelDir} (${ref.family}, ${(countParams(ref) / 1e6).toFixed(2)}M parameters); ` +
      `${trainPrompts.length} training and ${evalPrompts.length} held-out review prefixes; output ${out}`,
  );

  // 1. Preference pairs from the starting model's own samples.
  const bar = (label: string, total: number) => progress(label, total, { silent: cfg.quiet });
  let b = bar(
    `[1/5] sampling ${cfg.samples_per_prompt} completions x ${trainPrompts.length} prompts`,
    trainPrompts.length * cfg.samples_per_prompt,
  );
  const groups = await sampleScored(ref, tok, trainPrompts, demoReward, {
    k: cfg.samples_per_prompt,
    maxNewTokens: cfg.max_new_tokens,
    seed: cfg.seed + 1,
    batchSize: SAMPLE_BATCH,
    promptWidth,
    onProgress: (d) => b.update(d),
  });
  b.stop();
  const { pairs, skippedTies } = buildPairs(trainPrompts, groups);
  if (pairs.length < cfg.batch_size) {
    throw new Error(
      `tsdpo demo: only ${pairs.length} preference pairs (${skippedTies} ` +
        `prompts tied); raise --train_prompts or --samples_per_prompt`,
    );
  }
  writeFileSync(
    join(out, 'pairs.jsonl'),
    pairs
      .map(
        (p) =>
          `${JSON.stringify({
            prompt: p.prompt,
            chosen: p.chosen.text,
            rejected: p.rejected.text,
            chosen_reward: p.chosen.reward,
            rejected_reward: p.rejected.reward,
          })}\n`,
      )
      .join(''),
  );
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
  const pairInfo = {
    count: pairs.length,
    skippedTies,
    prompts: trainPrompts.length,
    meanChosen: mean(pairs.map((p) => p.chosen.reward)),
    meanRejected: mean(pairs.map((p) => p.rejected.reward)),
  };
  log(
    `      ${pairs.length} pairs (${skippedTies} prompts skipped: all completions tied); mean ` +
      `reward chosen ${pairInfo.meanChosen.toFixed(3)}, rejected ${pairInfo.meanRejected.toFixed(3)}`,
  );
  b = bar('      reference log-probs of the pairs', pairs.length);
  // Reference log-probs of every chosen and rejected completion, once for all runs.
  const items = pairs.flatMap((p) => [
    { promptIds: p.promptIds, completionIds: p.chosenIds },
    { promptIds: p.promptIds, completionIds: p.rejectedIds },
  ]);
  const flatRef = await completionLogps(ref, items, padId, 64, (d) => b.update(Math.floor(d / 2)));
  const refLogps = pairs.map((_, i) => Float64Array.of(flatRef[2 * i], flatRef[2 * i + 1]));
  b.stop();
  phase('pairs');

  // 2. The starting model on the held-out prompts, and best-of-N from the same samples.
  b = bar(
    `[2/5] starting model: ${cfg.ref_samples} completions x ${evalPrompts.length} held-out prompts`,
    evalPrompts.length * cfg.ref_samples,
  );
  const startEval = await evaluatePolicy(ref, ref, tok, evalPrompts, demoReward, {
    samplesPerPrompt: cfg.ref_samples,
    maxNewTokens: cfg.max_new_tokens,
    seed: cfg.seed + 2,
    batchSize: SAMPLE_BATCH,
    promptWidth,
    onProgress: (d) => b.update(d),
  });
  b.stop();
  const rewardsPerPrompt = startEval.samples.map((g) => g.map((s) => s.reward));
  const rows: RunRow[] = [
    {
      name: 'starting model (SFT)',
      kind: 'start',
      beta: null,
      reward: startEval.reward.mean,
      rewardSe: startEval.reward.se,
      kl: 0,
      klSe: 0,
      winRate: 0.5,
      winRateSe: 0,
    },
  ];
  for (const n of bestOf) {
    const e = bestOfN(rewardsPerPrompt, n);
    rows.push({
      name: `best-of-${n}`,
      kind: 'best-of-n',
      beta: null,
      reward: e.reward,
      rewardSe: NaN,
      kl: e.kl,
      klSe: NaN,
      winRate: e.winRate.mean,
      winRateSe: e.winRate.se,
      n,
      klBound: e.klBound,
    });
  }
  log(
    `      starting model reward ${startEval.reward.mean.toFixed(3)}; ${rows
      .slice(1)
      .map((r) => `${r.name} ${r.reward.toFixed(3)} at KL ${r.kl.toFixed(2)}`)
      .join(', ')}`,
  );

  // The held-out prompts' "dataset": k samples of the starting model, the best is the chosen completion.
  const { betas, alphas, klCoefs, temperatures } = checks;
  const heldGroups = await sampleScored(ref, tok, evalPrompts, demoReward, {
    k: cfg.samples_per_prompt,
    maxNewTokens: cfg.max_new_tokens,
    seed: cfg.seed + 4,
    batchSize: SAMPLE_BATCH,
    promptWidth,
  });
  const chosen = chosenRewards(heldGroups);
  const evalOptions = {
    samplesPerPrompt: cfg.eval_samples,
    maxNewTokens: cfg.max_new_tokens,
    seed: cfg.seed + 3,
    batchSize: SAMPLE_BATCH,
    promptWidth,
  };
  const tempSettings = { tok, prompts: evalPrompts, sample: evalOptions, chosen };
  const low = Math.min(...temperatures),
    trainingTemps = [...new Set([low, 1])];
  const byTemperature: WinRates['byTemperature'] = [];
  const toWin = (e: { mean: number; se: number }): WinPoint => ({ winRate: e.mean, winRateSe: e.se });
  byTemperature.push({
    name: 'starting model (SFT)',
    points: (await winByTemperature(ref, temperatures, tempSettings)).map(toWin),
  });
  const startByTemp = byTemperature[0].points;
  const overTraining: WinRates['overTraining'] = {
    name: '',
    temperatures: trainingTemps,
    points: [
      {
        step: 0,
        ...Object.fromEntries(
          trainingTemps.map((t) => [
            String(t),
            startByTemp[temperatures.indexOf(t)]?.winRate ?? winVsChosen(startEval.samples, chosen).mean,
          ]),
        ),
      },
    ],
  };
  log(
    `      held-out chosen completions: ${chosen.filter((c) => c !== null).length} ` +
      `of ${evalPrompts.length} prompts (the others' samples tied); ` +
      `starting model's win rate against them ` +
      `${startByTemp.map((p, i) => `${p.winRate.toFixed(3)} at T=${temperatures[i]}`).join(', ')}`,
  );
  phase('start');

  // 3. The reward model (from the starting model, on all pairs of the training samples).
  let rewardModel: DemoResult['rewardModel'];
  let rm = null;
  if (klCoefs.length > 0) {
    log(
      `[3/5] reward model: all pairs of the ${cfg.samples_per_prompt} ` +
        `samples of each training prompt, ${cfg.rm_epochs} epoch(s)`,
    );
    const r = await trainRewardModel({
      modelDir,
      prompts: cfg.rm_prompts > 0 ? trainPrompts.slice(0, cfg.rm_prompts) : trainPrompts,
      groups: cfg.rm_prompts > 0 ? groups.slice(0, cfg.rm_prompts) : groups,
      heldOutFraction: 0.1,
      epochs: cfg.rm_epochs,
      batchSize: 2 * cfg.batch_size,
      learningRate: cfg.rm_learning_rate,
      evaluations: 4,
      seed: cfg.seed,
      outDir: out,
      quiet: cfg.quiet,
    });
    rm = loadRewardModel(r.dir);
    const acc = await rewardModelAccuracy(rm, evalPrompts, heldGroups);
    rewardModel = { ...r, accuracy: acc.accuracy, accuracySe: acc.se, accuracyPairs: acc.pairs };
    log(
      `      ${r.trainPairs} training pairs, ${r.steps} steps; best held-out accuracy at step ${r.bestStep}; ` +
        `accuracy against the ground truth on held-out IMDb prompts ` +
        `${acc.accuracy.toFixed(3)} ± ${acc.se.toFixed(3)} (${acc.pairs} pairs)`,
    );
  }
  phase('reward-model');

  // 4. The policies, each evaluated at `checkpoints` evenly spaced steps.
  const settings = {
    modelDir,
    ref,
    tok,
    pairs,
    refLogps,
    evalPrompts,
    baseline: startEval.samples,
    eval: evalOptions,
    learningRate: cfg.learning_rate,
    steps: cfg.steps,
    batchSize: cfg.batch_size,
    checkpoints: cfg.checkpoints,
    seed: cfg.seed,
    outDir: join(out, 'runs'),
    saveModel: false,
    quiet: cfg.quiet,
  };
  const middle = <T>(xs: T[]): T | undefined => xs[Math.floor(xs.length / 2)];
  const fmt = (x: number) => String(x);
  const plan: RunSpec[] = [
    { name: 'preferred-ft', kind: 'preferred-ft', beta: null },
    ...betas.map((beta): RunSpec => ({ name: `dpo-beta-${fmt(beta)}`, kind: 'dpo', beta })),
    ...alphas.map((alpha): RunSpec => ({
      name: `unlikelihood-alpha-${fmt(alpha)}`,
      kind: 'unlikelihood',
      beta: null,
      alpha,
    })),
    ...klCoefs.map((beta): RunSpec => ({ name: `ppo-kl-${fmt(beta)}`, kind: 'ppo', beta })),
    ...klCoefs.map((beta): RunSpec => ({ name: `ppo-gt-kl-${fmt(beta)}`, kind: 'ppo-gt', beta })),
  ];
  // The temperature sweep: Preferred-FT, and DPO and PPO at their middle strength.
  const sweep = new Set([
    'preferred-ft',
    `dpo-beta-${fmt(middle(betas)!)}`,
    ...(klCoefs.length ? [`ppo-kl-${fmt(middle(klCoefs)!)}`] : []),
  ]);
  const overName = `dpo-beta-${fmt(middle(betas)!)}`;
  const describe = (r: RunSpec) =>
    r.kind === 'preferred-ft'
      ? 'Preferred-FT (SFT on the chosen completions)'
      : r.kind === 'dpo'
        ? `DPO, beta ${r.beta}`
        : r.kind === 'unlikelihood'
          ? `Unlikelihood, alpha ${r.alpha}`
          : `${r.kind === 'ppo' ? 'PPO (learned reward model)' : 'PPO-GT (ground-truth reward)'}, ` +
            `KL coefficient ${r.beta}`;
  const runs: RunResult[] = [];
  for (const [i, spec] of plan.entries()) {
    const ppo = spec.kind === 'ppo' || spec.kind === 'ppo-gt';
    log(
      `[4/5] run ${i + 1} of ${plan.length}: ${describe(spec)}, ` +
        `${ppo ? `${cfg.ppo_updates} updates of ${cfg.ppo_batch} rollouts` : `${cfg.steps} steps`}`,
    );
    let lastSamples: Scored[][] | null = null;
    const hooks = {
      onPoint: (p: CurvePoint) =>
        log(
          `      ${ppo ? 'update' : 'step'} ${p.step}: reward ${p.reward.toFixed(3)}, ` +
            `KL ${p.kl.toFixed(2)}, win rate ${p.winRate.toFixed(3)}` +
            (p.rmScore !== undefined ? `, reward model score ${p.rmScore.toFixed(3)}` : ''),
        ),
      atCheckpoint: async (policy: CausalLM, p: CurvePoint, samples: Scored[][]) => {
        lastSamples = samples;
        if (spec.name !== overName) return;
        const w = await winByTemperature(policy, trainingTemps, tempSettings, samples);
        overTraining.points.push({
          step: p.step,
          ...Object.fromEntries(trainingTemps.map((t, k) => [String(t), w[k].mean])),
        });
      },
      atEnd: async (policy: CausalLM) => {
        if (!sweep.has(spec.name)) return;
        const w = await winByTemperature(policy, temperatures, tempSettings, lastSamples);
        byTemperature.push({ name: rowName(spec), points: w.map(toWin) });
      },
    };
    const r = ppo
      ? await tracePpo(
          spec,
          { ...settings, ...hooks },
          {
            prompts: trainPrompts,
            rewardDir: spec.kind === 'ppo' ? rewardModel!.dir : null,
            rm: spec.kind === 'ppo' ? rm : null,
            updates: cfg.ppo_updates,
            rolloutBatch: cfg.ppo_batch,
            epochs: cfg.ppo_epochs,
            learningRate: cfg.ppo_learning_rate,
            maxNewTokens: cfg.max_new_tokens,
            threads: cfg.threads,
          },
        )
      : await traceRun(spec, { ...settings, ...hooks });
    runs.push(r);
    const { step: _, ...measures } = r.points[r.points.length - 1]; // the final point
    rows.push({
      name: rowName(spec),
      kind: r.kind,
      beta: r.beta,
      ...(r.alpha !== undefined ? { alpha: r.alpha } : {}),
      ...measures,
    });
  }
  overTraining.name = rowName({ name: overName, kind: 'dpo', beta: middle(betas)! });
  if (rm) {
    for (const t of rm.model.params.values()) t.dispose();
    rm.score.dispose();
  }
  phase('runs');

  // 4. The frontier check, the table and the report.
  const start: FrontierPoint = { kl: 0, reward: startEval.reward.mean };
  const dpoPoints = runs.filter((r) => r.kind === 'dpo').map((r) => r.points);
  const pointsOf = (kind: RunKind) => runs.filter((r) => r.kind === kind).flatMap((r) => r.points);
  const frontier: DemoResult['frontier'] = {
    trained: checkAgainst([start, ...pointsOf('preferred-ft')], dpoPoints),
    bestOfN: checkAgainst([start, ...rows.filter((r) => r.kind === 'best-of-n')], dpoPoints),
    ...(klCoefs.length
      ? {
          ppo: checkAgainst([start, ...pointsOf('ppo')], dpoPoints),
          ppoGt: checkAgainst([start, ...pointsOf('ppo-gt')], dpoPoints),
        }
      : {}),
  };
  const result: DemoResult = {
    config: cfg,
    model: modelDir,
    rows,
    runs,
    start: { reward: startEval.reward.mean, rewardSe: startEval.reward.se, samples: startEval.samples },
    evalPrompts: evalPrompts.map((p) => p.text),
    pairs: pairInfo,
    frontier,
    seconds,
    output: out,
    rewardModel,
    winRates: { prompts: chosen.filter((c) => c !== null).length, temperatures, byTemperature, overTraining },
  };
  seconds.total = (performance.now() - t0) / 1000;
  await writeReport(result);
  phase('report');
  seconds.total = (performance.now() - t0) / 1000;
  writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summaryJson(result), null, 2)}\n`);
  log(`[5/5] done in ${seconds.total.toFixed(0)} s`);
  for (const t of ref.params.values()) t.dispose();
  return result;
}

/** The name of a run in the table, the charts and summary.json. */
export function rowName(r: RunSpec): string {
  switch (r.kind) {
    case 'preferred-ft':
      return 'Preferred-FT';
    case 'dpo':
      return `DPO beta=${r.beta}`;
    case 'unlikelihood':
      return `Unlikelihood alpha=${r.alpha}`;
    case 'ppo':
      return `PPO kl_coef=${r.beta}`;
    case 'ppo-gt':
      return `PPO-GT kl_coef=${r.beta}`;
  }
}

function countParams(m: { params: Map<string, { size: number }> }): number {
  let n = 0;
  for (const t of m.params.values()) n += t.size;
  return n;
}

/**
 * The machine-readable summary: final points of every run, then every checkpoint, the reward model and the win rates.
 */
export function summaryJson(r: DemoResult): Record<string, unknown> {
  const round = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null);
  const rm = r.rewardModel,
    w = r.winRates;
  return {
    runs: r.rows.map((x) => ({
      name: x.name,
      beta: x.beta,
      reward: round(x.reward),
      kl: round(x.kl),
      reward_se: round(x.rewardSe),
      kl_se: round(x.klSe),
      win_rate: round(x.winRate),
      win_rate_se: round(x.winRateSe),
      ...(x.n ? { n: x.n, kl_bound: round(x.klBound!) } : {}),
      ...(x.alpha !== undefined ? { alpha: x.alpha } : {}),
      ...(x.rmScore !== undefined ? { rm_score: round(x.rmScore) } : {}),
    })),
    checkpoints: r.runs.flatMap((run) =>
      run.points.map((p) => ({
        run: run.name,
        beta: run.beta,
        step: p.step,
        reward: round(p.reward),
        kl: round(p.kl),
        win_rate: round(p.winRate),
        ...(p.rmScore !== undefined ? { rm_score: round(p.rmScore) } : {}),
      })),
    ),
    pairs: r.pairs.count,
    frontier: Object.fromEntries(
      Object.entries(r.frontier).map(([k, c]) => [
        k === 'bestOfN' ? 'best_of_n' : k === 'ppoGt' ? 'ppo_gt' : k,
        {
          dpo_points: c.points,
          on_or_above: c.onOrAbove,
          final_points: c.finals,
          final_on_or_above: c.finalsOnOrAbove,
        },
      ]),
    ),
    ...(rm
      ? {
          reward_model: {
            train_pairs: rm.trainPairs,
            held_out_pairs: rm.heldOutPairs,
            steps: rm.steps,
            best_step: rm.bestStep,
            held_out_accuracy: rm.curve.map((c) => ({ step: c.step, accuracy: round(c.accuracy) })),
            ground_truth_accuracy: round(rm.accuracy),
            ground_truth_accuracy_se: round(rm.accuracySe),
            ground_truth_pairs: rm.accuracyPairs,
          },
        }
      : {}),
    ...(w
      ? {
          win_rates_vs_chosen: {
            prompts: w.prompts,
            temperatures: w.temperatures,
            by_temperature: w.byTemperature.map((x) => ({
              name: x.name,
              win_rate: x.points.map((p) => round(p.winRate)),
              win_rate_se: x.points.map((p) => round(p.winRateSe)),
            })),
            over_training: {
              name: w.overTraining.name,
              temperatures: w.overTraining.temperatures,
              points: w.overTraining.points.map((p) => ({
                step: p.step,
                win_rate: Object.fromEntries(w.overTraining.temperatures.map((t) => [String(t), round(p[String(t)])])),
              })),
            },
          },
        }
      : {}),
    seconds: Math.round(r.seconds.total ?? 0),
    phase_seconds: Object.fromEntries(
      Object.entries(r.seconds)
        .filter(([k]) => k !== 'total')
        .map(([k, v]) => [k, Math.round(v)]),
    ),
  };
}
