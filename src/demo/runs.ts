// The demo's trained policies on the preference pairs: DPO at one beta, Preferred-FT (SFT on the
// chosen completions) or Unlikelihood (unlikelihood.ts), the paper's baselines, each a full fine-tune of a fresh copy
// of the starting model through the shared
// training loop (src/train/trainer.ts). The loop's evaluation hook samples the held-out prompts at
// evenly spaced steps, so each run traces a curve in the reward-vs-KL plane.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PreferenceDataset } from '../data/pipeline.js';
import type { SftDataset } from '../data/sft.js';
import { loadModel, saveModel, trainAll } from '../models/load.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import {
  COMMON_OPTIONS,
  DPO_OPTIONS,
  SFT_OPTIONS,
  defaultsOf,
  type DpoConfig,
  type SftConfig,
} from '../train/config.js';
import { DpoObjective } from '../train/dpo.js';
import { SftObjective } from '../train/sft.js';
import { prepareOutputDir, train, type Objective } from '../train/trainer.js';
import { evaluatePolicy, samplesWinRate, type EvalOptions } from '../eval/evaluate.js';
import type { DemoPair } from './pairs.js';
import { demoReward, type DemoPrompt, type Scored } from './sample.js';
import { UnlikelihoodObjective } from './unlikelihood.js';

/** What a policy is measured by on the held-out prompts, each with its standard error. */
export interface Measures {
  reward: number;
  rewardSe: number;
  kl: number;
  klSe: number;
  /** Win rate against the starting model's samples (src/eval/win-rate.ts; 1/2 for itself). */
  winRate: number;
  winRateSe: number;
}

export interface CurvePoint extends Measures {
  step: number;
  /** PPO with the learned reward model: that model's mean score of the same samples (reward hacking shows here). */
  rmScore?: number;
}

export type RunKind = 'dpo' | 'preferred-ft' | 'unlikelihood' | 'ppo' | 'ppo-gt';

/**
 * What to train: `beta` is DPO's beta or PPO's KL coefficient (the same beta of the RLHF objective, Eq. 3); `alpha`
 * Unlikelihood's weight.
 */
export interface RunSpec {
  name: string;
  kind: RunKind;
  beta: number | null;
  alpha?: number;
}

export interface RunResult extends RunSpec {
  /** One point per evaluation, in step order (step 0, the starting model, is not repeated here). */
  points: CurvePoint[];
  /** Training metrics lines of the loop (loss, rewards/accuracies, ...). */
  history: Record<string, number>[];
  /** Held-out samples of the final policy, [prompt][sample]. */
  finalSamples: Scored[][];
  seconds: number;
}

export interface RunSettings {
  modelDir: string;
  ref: CausalLM;
  tok: TextTokenizer;
  pairs: DemoPair[];
  /** Reference log-probs (chosen, rejected) of every pair, computed once for all runs. */
  refLogps: Float64Array[];
  evalPrompts: DemoPrompt[];
  eval: EvalOptions;
  /** The starting model's samples of the held-out prompts: the win rates' baseline. */
  baseline: Scored[][];
  learningRate: number;
  steps: number;
  batchSize: number;
  checkpoints: number;
  seed: number;
  outDir: string;
  saveModel: boolean;
  quiet: boolean;
  /** Called after each evaluation (for a status line). */
  onPoint?: (p: CurvePoint) => void;
  /** Called after each evaluation with the policy and its held-out samples (temperature 1), for extra measures. */
  atCheckpoint?: (policy: CausalLM, p: CurvePoint, samples: Scored[][]) => Promise<void>;
  /** Called with the final policy before it is freed. */
  atEnd?: (policy: CausalLM) => Promise<void>;
}

/** One evaluation of `policy` on the held-out prompts: a point of its curve, and its samples. */
export async function evaluatePoint(
  policy: CausalLM,
  step: number,
  s: RunSettings,
): Promise<{ point: CurvePoint; samples: Scored[][] }> {
  const e = await evaluatePolicy(policy, s.ref, s.tok, s.evalPrompts, demoReward, s.eval);
  const win = samplesWinRate(e.samples, s.baseline);
  return {
    point: {
      step,
      reward: e.reward.mean,
      rewardSe: e.reward.se,
      kl: e.kl.mean,
      klSe: e.kl.se,
      winRate: win.mean,
      winRateSe: win.se,
    },
    samples: e.samples,
  };
}

const report = (rows: number): PreferenceDataset['report'] => ({
  read: rows,
  rows,
  truncated: 0,
  dropped: 0,
  skippedInvalid: 0,
  invalid: [],
  files: [],
  format: 'sampled by the demo',
});

function runConfig(s: RunSettings, outDir: string, beta: number): DpoConfig & Omit<SftConfig, 'loss_type'> {
  const evalEvery = Math.max(1, Math.round(s.steps / s.checkpoints));
  return {
    ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS, ...SFT_OPTIONS }),
    output_dir: outDir,
    overwrite_output_dir: true,
    device: 'cpu',
    learning_rate: s.learningRate,
    lr_scheduler_type: 'constant_with_warmup',
    warmup_steps: Math.min(10, Math.ceil(s.steps / 10)),
    max_steps: s.steps,
    per_device_train_batch_size: s.batchSize,
    gradient_accumulation_steps: 1,
    logging_steps: Math.max(1, Math.round(s.steps / 40)),
    eval_steps: evalEvery,
    save_steps: 0,
    weight_decay: 0,
    max_grad_norm: 1,
    seed: s.seed,
    beta,
    loss_type: ['sigmoid'],
  };
}

/** Trains one policy on the pairs (DPO, Preferred-FT or Unlikelihood) and evaluates it along the way. */
export async function traceRun(spec: RunSpec, s: RunSettings): Promise<RunResult> {
  const { name, kind, beta } = spec;
  const t0 = performance.now();
  const outDir = join(s.outDir, name);
  const cfg = runConfig(s, outDir, beta ?? 0.1);
  prepareOutputDir(cfg);
  const policy = loadModel(s.modelDir);
  const params = trainAll(policy);
  const padId = s.tok.padId ?? s.tok.eosId ?? 0;
  // Checkpoints of the loop are kept small: the weights only when asked, and removed at the end.
  const saveWeights = async (dir: string): Promise<void> => {
    if (s.saveModel) await saveModel(policy, dir);
    else mkdirSync(dir, { recursive: true });
  };
  const loadWeights = async (): Promise<void> => {
    throw new Error('demo runs do not resume');
  };
  const inner: Objective =
    kind === 'unlikelihood'
      ? new UnlikelihoodObjective({
          policy,
          params,
          pairs: s.pairs,
          padId,
          alpha: spec.alpha ?? 0,
          saveWeights,
          loadWeights,
        })
      : kind === 'preferred-ft'
        ? new SftObjective({
            cfg,
            policy,
            params,
            padId,
            saveWeights,
            loadWeights,
            eval: null,
            loraDropout: 0,
            train: {
              examples: s.pairs.map((p) => ({
                ids: [...p.promptIds, ...p.chosenIds],
                promptLength: p.promptIds.length,
              })),
              sources: [],
              format: null,
              report: report(s.pairs.length),
            } satisfies SftDataset,
          })
        : kind === 'dpo'
          ? new DpoObjective({
              cfg,
              policy,
              params,
              padId,
              saveWeights,
              loadWeights,
              eval: null,
              loraDropout: 0,
              reference: { kind: 'cached', train: s.refLogps, eval: null },
              train: { examples: s.pairs, sources: [], format: null, report: report(s.pairs.length) },
            })
          : unknownKind(kind);
  const points: CurvePoint[] = [];
  let last: Scored[][] = [];
  let step = 0;
  const objective: Objective = {
    size: inner.size,
    params: inner.params,
    loraDropout: 0,
    micro: (indices, scale, st) => {
      step = st + 1;
      return inner.micro(indices, scale, st);
    },
    evaluate: async () => {
      const { point: p, samples } = await evaluatePoint(policy, step, s);
      last = samples;
      points.push(p);
      s.onPoint?.(p);
      await s.atCheckpoint?.(policy, p, samples);
      return { reward: p.reward, kl: p.kl };
    },
    saveWeights,
    loadWeights,
  };
  const r = await train(cfg, objective, { log: () => {}, quiet: s.quiet, record: { command: 'demo', run: name } });
  if (r.stopped) throw new Error(`demo run ${name}: ${r.stopped}`);
  for (const e of readdirSync(outDir))
    if (e.startsWith('checkpoint-') || e === 'trainer_state.json')
      rmSync(join(outDir, e), { recursive: true, force: true });
  if (s.saveModel) await saveModel(policy, join(outDir, 'model'));
  await s.atEnd?.(policy);
  for (const t of policy.params.values()) t.dispose();
  return {
    ...spec,
    points,
    history: r.history.filter((h) => 'loss' in h),
    finalSamples: last,
    seconds: (performance.now() - t0) / 1000,
  };
}

function unknownKind(kind: string): never {
  throw new Error(
    `traceRun: kind '${kind}' is not trained on pairs (dpo, preferred-ft or unlikelihood; PPO runs are rlhf.ts's)`,
  );
}
