// The RLHF side of the demo, as the DPO paper ran it on IMDb (arXiv:2305.18290, Sec. 6.1 and App. C.1):
//   - a reward model trained from the starting model on all 6 pairs of the 4 samples of each training
//     prompt, labelled by the ground-truth reward (the train loop of `tsdpo reward`, src/train/reward.ts),
//     keeping the weights of the evaluation with the best held-out pair accuracy;
//   - PPO against that reward model, and PPO-GT against the ground-truth reward itself (a function),
//     through `tsdpo ppo`'s runner (src/rl/run.ts), rollouts at temperature 1 so that PPO's KL and the
//     evaluation's KL are the same quantity, evaluated on the held-out prompts as the DPO runs are.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { scoreSequences, type RewardModel } from '../eval/reward-model.js';
import type { CausalLM } from '../models/model.js';
import { loadSequenceClassifier, saveSequenceClassifier } from '../models/seqcls.js';
import { trainAll } from '../models/build.js';
import type { RewardExample } from '../data/reward.js';
import { PPO_OPTIONS, type PpoConfig } from '../rl/config.js';
import { runPpo } from '../rl/run.js';
import { COMMON_OPTIONS, defaultsOf } from '../train/config.js';
import { REWARD_SPECS, rewardConfig } from '../train/reward-config.js';
import { RewardObjective } from '../train/reward.js';
import { prepareOutputDir, train } from '../train/trainer.js';
import { evaluatePoint, type CurvePoint, type RunResult, type RunSettings, type RunSpec } from './runs.js';
import { demoReward, type DemoPrompt, type Scored } from './sample.js';

/**
 * Every pair of a prompt's samples whose ground-truth rewards differ, the higher one chosen (4 samples: up to 6 pairs).
 */
export function allPairs(prompts: readonly DemoPrompt[], groups: readonly (readonly Scored[])[]): RewardExample[] {
  if (prompts.length !== groups.length)
    throw new Error(`allPairs: ${prompts.length} prompts but ${groups.length} groups of samples`);
  const out: RewardExample[] = [];
  groups.forEach((g, i) => {
    for (let a = 0; a < g.length; a++) {
      for (let b = a + 1; b < g.length; b++) {
        if (g[a].reward === g[b].reward) continue;
        const [w, l] = g[a].reward > g[b].reward ? [g[a], g[b]] : [g[b], g[a]];
        // The ids PPO's reward model scores: prompt (with its leading EOS) + completion (EOS when reached).
        out.push({
          chosenIds: [...prompts[i].ids, ...w.ids],
          rejectedIds: [...prompts[i].ids, ...l.ids],
          margin: null,
        });
      }
    }
  });
  return out;
}

/**
 * How often the reward model orders two completions of a prompt as the ground truth does, over every
 * pair of `groups[i]` with different ground-truth rewards (an equal score counts 1/2).
 */
export async function rewardModelAccuracy(
  rm: RewardModel,
  prompts: readonly DemoPrompt[],
  groups: readonly (readonly Scored[])[],
): Promise<{ accuracy: number; se: number; pairs: number }> {
  const rows = groups.flatMap((g, i) => g.map((s) => [...prompts[i].ids, ...s.ids]));
  const scores = (await scoreSequences(rm, rows, 64)).map((x) => x[0]);
  const hits: number[] = [];
  let k = 0;
  for (const g of groups) {
    for (let a = 0; a < g.length; a++) {
      for (let b = a + 1; b < g.length; b++) {
        if (g[a].reward === g[b].reward) continue;
        const truth = Math.sign(g[a].reward - g[b].reward),
          said = Math.sign(scores[k + a] - scores[k + b]);
        hits.push(said === 0 ? 0.5 : said === truth ? 1 : 0);
      }
    }
    k += g.length;
  }
  const n = hits.length,
    mean = hits.reduce((x, y) => x + y, 0) / Math.max(1, n);
  const sd = Math.sqrt(hits.reduce((x, y) => x + (y - mean) ** 2, 0) / Math.max(1, n - 1));
  return { accuracy: mean, se: sd / Math.sqrt(Math.max(1, n)), pairs: n };
}

export interface RewardModelResult {
  /** The folder of the kept weights (a GPT2ForSequenceClassification transformers loads). */
  dir: string;
  trainPairs: number;
  heldOutPairs: number;
  steps: number;
  /** Held-out pair accuracy (labels of the ground truth) at each evaluation. */
  curve: { step: number; accuracy: number }[];
  bestStep: number;
  seconds: number;
}

export interface RewardModelSettings {
  modelDir: string;
  /** Training prompts and their samples: the last heldOutFraction of them choose the checkpoint. */
  prompts: DemoPrompt[];
  groups: Scored[][];
  heldOutFraction: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  evaluations: number;
  seed: number;
  outDir: string;
  quiet: boolean;
}

/** Trains the reward model and writes the weights of its best held-out evaluation into outDir/reward-model. */
export async function trainRewardModel(s: RewardModelSettings): Promise<RewardModelResult> {
  const t0 = performance.now();
  const cut = Math.max(1, Math.round(s.prompts.length * (1 - s.heldOutFraction)));
  const trainEx = allPairs(s.prompts.slice(0, cut), s.groups.slice(0, cut));
  const heldEx = allPairs(s.prompts.slice(cut), s.groups.slice(cut));
  if (trainEx.length < s.batchSize || heldEx.length === 0) {
    throw new Error(
      `demo reward model: ${trainEx.length} training and ${heldEx.length} held-out pairs; raise --train_prompts`,
    );
  }
  const steps = Math.max(1, Math.round((s.epochs * trainEx.length) / s.batchSize));
  const runDir = join(s.outDir, 'reward-run'),
    dir = join(s.outDir, 'reward-model');
  const cfg = {
    ...rewardConfig(defaultsOf(REWARD_SPECS)),
    model_name_or_path: s.modelDir,
    output_dir: runDir,
    overwrite_output_dir: true,
    device: 'cpu' as const,
    learning_rate: s.learningRate,
    lr_scheduler_type: 'linear' as const,
    warmup_steps: Math.ceil(steps / 20),
    max_steps: steps,
    per_device_train_batch_size: s.batchSize,
    per_device_eval_batch_size: 64,
    gradient_accumulation_steps: 1,
    weight_decay: 0,
    max_grad_norm: 1,
    logging_steps: Math.max(1, Math.round(steps / 20)),
    eval_steps: Math.max(1, Math.round(steps / s.evaluations)),
    save_steps: 0,
    seed: s.seed,
  };
  prepareOutputDir(cfg);
  // Seeded as `tsdpo reward` makes the new one-label head.
  const sc = loadSequenceClassifier(s.modelDir, { newHead: { numLabels: 1, seed: s.seed } });
  const params = trainAll(sc.model);
  sc.score.requiresGrad = true;
  params.push({ name: 'score.weight', tensor: sc.score });
  // Pad 0 on the right (masked); the score is read at each sequence's last token, EOS when the sample reached it, as
  // PPO reads it.
  const PAD = 0;
  const inner = new RewardObjective({
    cfg,
    model: sc,
    params,
    padId: PAD,
    loraDropout: 0,
    train: {
      examples: trainEx,
      sources: [],
      format: null,
      hasMargin: false,
      report: {
        read: trainEx.length,
        rows: trainEx.length,
        truncated: 0,
        dropped: 0,
        skippedInvalid: 0,
        invalid: [],
        files: [],
        format: 'sampled by the demo',
      },
    },
    eval: {
      examples: heldEx,
      sources: [],
      format: null,
      hasMargin: false,
      report: {
        read: heldEx.length,
        rows: heldEx.length,
        truncated: 0,
        dropped: 0,
        skippedInvalid: 0,
        invalid: [],
        files: [],
        format: 'sampled by the demo',
      },
    },
    // The loop's own checkpoints are kept small (no weights); the best weights go to `dir` instead.
    saveWeights: async (d: string) => {
      mkdirSync(d, { recursive: true });
    },
    loadWeights: async () => {
      throw new Error('demo runs do not resume');
    },
  });
  const curve: { step: number; accuracy: number }[] = [];
  let step = 0,
    best = -1,
    bestStep = 0;
  const r = await train(
    cfg,
    {
      size: inner.size,
      params: inner.params,
      loraDropout: 0,
      micro: (idx, scale, st) => {
        step = st + 1;
        return inner.micro(idx, scale);
      },
      evaluate: async () => {
        const m = await inner.evaluate();
        const acc = m?.accuracy ?? NaN;
        curve.push({ step, accuracy: acc });
        if (acc > best) {
          best = acc;
          bestStep = step;
          await saveSequenceClassifier(sc, dir, PAD);
        }
        return m;
      },
      saveWeights: inner.saveWeights.bind(inner),
      loadWeights: inner.loadWeights.bind(inner),
    },
    { log: () => {}, quiet: s.quiet, record: { command: 'demo', run: 'reward-model' } },
  );
  if (r.stopped) throw new Error(`demo reward model: ${r.stopped}`);
  rmSync(runDir, { recursive: true, force: true });
  for (const t of sc.model.params.values()) t.dispose();
  sc.score.dispose();
  return {
    dir,
    trainPairs: trainEx.length,
    heldOutPairs: heldEx.length,
    steps,
    curve,
    bestStep,
    seconds: (performance.now() - t0) / 1000,
  };
}

export interface PpoSettings {
  /** Prompts PPO samples rollouts for (the demo's training prompts). */
  prompts: DemoPrompt[];
  /** The learned reward model's folder (PPO), or null for the ground-truth reward (PPO-GT). */
  rewardDir: string | null;
  /** The learned reward model, to report its score of every evaluation's samples (PPO only). */
  rm: RewardModel | null;
  updates: number;
  rolloutBatch: number;
  /** PPO epochs per update (one mini-batch each). */
  epochs: number;
  learningRate: number;
  maxNewTokens: number;
  threads: number;
}

/** One PPO run at KL coefficient spec.beta, evaluated at `checkpoints` evenly spaced updates. */
export async function tracePpo(spec: RunSpec, s: RunSettings, p: PpoSettings): Promise<RunResult> {
  const t0 = performance.now();
  const outDir = join(s.outDir, spec.name);
  const cfg: PpoConfig = {
    ...defaultsOf(COMMON_OPTIONS),
    ...defaultsOf(PPO_OPTIONS),
    model_name_or_path: s.modelDir,
    dataset: "the demo's training prompts",
    output_dir: outDir,
    overwrite_output_dir: true,
    device: 'cpu' as const,
    threads: p.threads,
    seed: s.seed,
    learning_rate: p.learningRate,
    lr_scheduler_type: 'constant',
    warmup_steps: 0,
    per_device_train_batch_size: p.rolloutBatch,
    gradient_accumulation_steps: 1,
    num_mini_batches: 1,
    num_ppo_epochs: p.epochs,
    total_episodes: p.updates * p.rolloutBatch,
    local_rollout_forward_batch_size: p.rolloutBatch,
    // Rollouts as the evaluation samples: temperature 1, up to max_new_tokens, stopping at EOS.
    response_length: p.maxNewTokens,
    temperature: 1,
    stop_token: 'eos',
    // Pad must differ from EOS; an id past the vocabulary never reaches the model (fed as 0).
    pad_token_id: s.ref.vocabSize,
    reward: p.rewardDir ?? 'sentiment',
    kl_coef: spec.beta!,
    adap_kl_ctrl: false,
  };
  const every = Math.max(1, Math.round(p.updates / s.checkpoints));
  const points: CurvePoint[] = [];
  let last: Scored[][] = [];
  const r = await runPpo(cfg, {
    log: () => {},
    quiet: s.quiet,
    readPrompts: async () => p.prompts,
    rewardFunction: async () => demoReward,
    afterUpdate: async (u: number, total: number, policy: CausalLM) => {
      if (u % every !== 0 && u !== total) return;
      const { point, samples } = await evaluatePoint(policy, u, s);
      if (p.rm) {
        const scores = await scoreSequences(
          p.rm,
          samples.flatMap((g, i) => g.map((x) => [...s.evalPrompts[i].ids, ...x.ids])),
          64,
        );
        point.rmScore = scores.reduce((a, x) => a + x[0], 0) / scores.length;
      }
      last = samples;
      points.push(point);
      s.onPoint?.(point);
      await s.atCheckpoint?.(policy, point, samples);
      if (u === total) await s.atEnd?.(policy);
    },
  });
  // The run's metrics.jsonl stays; the weights are not kept (as the other runs' checkpoints).
  for (const f of readdirSync(outDir))
    if (f !== 'metrics.jsonl') rmSync(join(outDir, f), { recursive: true, force: true });
  const history = r.history.map((h) => ({
    step: h.step,
    loss: h['loss/policy_avg'],
    score: h['objective/scores'],
    kl: h['objective/kl'],
  }));
  return { ...spec, points, history, finalSamples: last, seconds: (performance.now() - t0) / 1000 };
}
