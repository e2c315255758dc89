// `tsdpo ppo` on the run skeleton (train/run.ts runMethod: engine, tokenizer, policy + LoRA, the
// shared loop of train/trainer.ts with its optimizer, schedule, metrics.jsonl, checkpoints, resume
// and --memory_report, the final save): the models beside the policy (reference, reward, critic)
// and PpoObjective, whose step is one PPO update: a batch of prompts, rollouts sampled with the
// KV-cache sampler, scores, advantages, then num_ppo_epochs x num_mini_batches optimizer updates
// (ppo.ts). With save_value the critic is written beside the policy.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tidyAsync } from '../core/index.js';
import { Rng } from '../core/random.js';
import { generate } from '../eval/generate.js';
import { loadRewardModel } from '../eval/reward-model.js';
import type { EvalPrompt, RewardFn } from '../eval/sample.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { NamedParam, Optimizer } from '../train/optim.js';
import { runMethod, type RunOptions } from '../train/run.js';
import type { MicroResult, Objective, OwnStepResult } from '../train/trainer.js';
import { trainerEpochOrder } from '../train/torch-order.js';
import { AdaptiveKl, type KlEstimator } from './advantages.js';
import type { PpoConfig } from './config.js';
import { policyParams, saveValueModel, valueFromPolicy, valueFromRewardFolder, valueParams } from './models.js';
import {
  ppoEpochs,
  rolloutPhase,
  updateMetrics,
  type PpoModels,
  type PpoUpdateOptions,
  type RolloutBatch,
} from './ppo.js';

/** How a PPO run reports (log lines, progress, every metrics line and update), and where its prompts and reward come from. */
export interface PpoRunOptions extends RunOptions {
  /** Reads the prompts file (the CLI's reader: .txt / .jsonl / .json / .parquet, chat templates). */
  readPrompts(tok: TextTokenizer, maxNewTokens: number, maxPositions: number): Promise<EvalPrompt[]>;
  /** Resolves a --reward that is not a folder ('sentiment' or a module) to a function. */
  rewardFunction(spec: string): Promise<RewardFn>;
  /** Called after each update with the policy being trained (the demo evaluates it at chosen updates). */
  afterUpdate?(update: number, total: number, policy: CausalLM): Promise<void>;
  /** Rows of logits the LM head makes at once (tests force small chunks; default 256 MiB of them). */
  headChunkRows?: number;
}

export interface PpoRunResult {
  updates: number;
  history: Record<string, number>[];
  output: string;
}

/** The checks TRL's PPOTrainer makes at construction, with tsdpo's option names. */
export function ppoSizes(
  cfg: PpoConfig,
  prompts: number,
): { batch: number; mini: number; total: number; perEpoch: number } {
  const batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps;
  if (batch % cfg.num_mini_batches !== 0)
    throw new Error(
      `--num_mini_batches ${cfg.num_mini_batches} must divide the batch (per_device_train_batch_size x gradient_accumulation_steps = ${batch})`,
    );
  const mini = batch / cfg.num_mini_batches;
  if (cfg.whiten_rewards && mini < 8)
    throw new Error(
      `--whiten_rewards needs mini-batches of at least 8 rollouts (TRL's check); this config has ${mini}`,
    );
  if (prompts < batch)
    throw new Error(
      `${cfg.dataset}: ${prompts} prompts, fewer than one batch (${batch}); the data loader drops incomplete batches`,
    );
  const episodes = cfg.total_episodes > 0 ? cfg.total_episodes : Math.trunc(cfg.num_train_epochs * prompts);
  return { batch, mini, total: Math.ceil(episodes / batch), perEpoch: Math.floor(prompts / batch) };
}

/**
 * PPO scores the policy's token ids with the reward model (as TRL): both must share a vocabulary. A
 * reward folder without tokenizer.json (an adapter) is not checked.
 */
function sameTokenizer(rewardDir: string, policyDir: string): void {
  const vocab = (dir: string): string | null => {
    const f = join(dir, 'tokenizer.json');
    return existsSync(f)
      ? JSON.stringify((JSON.parse(readFileSync(f, 'utf8')) as { model?: unknown }).model ?? null)
      : null;
  };
  const r = vocab(rewardDir),
    p = vocab(policyDir);
  if (r !== null && p !== null && r !== p) {
    throw new Error(
      `${rewardDir}: the reward model's tokenizer differs from the policy's (${policyDir}); PPO scores the policy's token ids ` +
        'without re-tokenizing text, so they must share a vocabulary: train the reward model from this policy ' +
        '(tsdpo reward), or pass a reward function (sentiment or a module), which scores text',
    );
  }
}

/**
 * Samples responses to `prompts` in chunks of forwardBatch, laid out as TRL's batch_generation:
 * within a chunk, rows that stopped are filled with the stop token up to the chunk's longest
 * (transformers' generate pads finished rows with EOS when no pad id is configured), and chunks
 * are padded with pad to the longest; queries are left-padded with pad.
 */
export async function sampleRollouts(
  policy: CausalLM,
  prompts: EvalPrompt[],
  o: PpoUpdateOptions & { responseLength: number; rng: Rng },
): Promise<RolloutBatch> {
  const B = prompts.length,
    Q = Math.max(...prompts.map((p) => p.ids.length));
  const chunks: number[][][] = [];
  for (let s = 0; s < B; s += o.forwardBatch) {
    const part = prompts.slice(s, s + o.forwardBatch);
    const g = await tidyAsync(() =>
      generate(
        policy,
        part.map((p) => p.ids),
        {
          maxNewTokens: o.responseLength,
          doSample: true,
          temperature: o.temperature + 1e-7,
          topK: 0,
          topP: 1,
          eosIds: o.stopId === null ? [] : [o.stopId],
          padId: 0,
          rng: o.rng,
        },
      ),
    );
    const W = Math.max(...g.tokens.map((t) => t.length));
    chunks.push(g.tokens.map((t) => [...t, ...new Array<number>(W - t.length).fill(o.stopId ?? o.padId)]));
  }
  const T = Math.max(...chunks.map((c) => c[0].length));
  const rows = new Int32Array(B * (Q + T)).fill(o.padId);
  chunks.flat().forEach((resp, b) => {
    const q = prompts[b].ids;
    rows.set(q, b * (Q + T) + Q - q.length);
    rows.set(resp, b * (Q + T) + Q);
  });
  return { B, Q, T, queryResponses: rows, prompts: prompts.map((p) => p.text) };
}

/** What PpoObjective runs on: the config, the models, the prompts and the batch sizes. */
export interface PpoParts {
  cfg: PpoConfig;
  models: PpoModels;
  /** The policy's trained parameters (LoRA factors, or all), named as the model names them. */
  policyParams: NamedParam[];
  prompts: EvalPrompt[];
  sizes: ReturnType<typeof ppoSizes>;
  padId: number;
  eosId: number;
  afterUpdate?: PpoRunOptions['afterUpdate'];
  headChunkRows?: number;
}

/**
 * PPO as an objective of the shared loop: each step is one update (ownStep), which takes its own
 * optimizer steps. The policy and the critic share the loop's one optimizer and schedule, stepped
 * once per update (TRL's PPOTrainer). A checkpoint keeps the sampling generator, the KL coefficient
 * and the gradient-accumulation counter besides the weights of both.
 */
export class PpoObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout = 0;
  readonly steps: number;
  /** The critic's parameters (value_model.*), the second part of params. */
  private readonly critic: NamedParam[];
  private rng: Rng;
  private readonly klCtl: AdaptiveKl;
  /** accelerate's gradient-accumulation counter, which runs across updates. */
  private readonly acc = { step: 0 };
  private start = 0;

  constructor(
    readonly parts: PpoParts,
    private readonly policyWeights: { save(dir: string): Promise<void>; load(dir: string): Promise<void> },
  ) {
    const { cfg, models, sizes } = parts;
    this.size = parts.prompts.length;
    this.steps = sizes.total;
    this.critic = valueParams(models.value);
    this.params = [...policyParams(parts.policyParams), ...this.critic];
    this.rng = new Rng(cfg.seed);
    this.klCtl = new AdaptiveKl(cfg.adap_kl_ctrl ? cfg.init_kl_coef : cfg.kl_coef, cfg.target, cfg.horizon);
  }

  private options(): PpoUpdateOptions {
    const { cfg, padId, eosId } = this.parts;
    return {
      temperature: cfg.temperature,
      padId,
      eosId,
      stopId: cfg.stop_token === 'eos' ? eosId : null,
      missingEosPenalty: cfg.missing_eos_penalty >= 0 ? cfg.missing_eos_penalty : null,
      klCoef: this.klCtl.value,
      klEstimator: cfg.kl_estimator as KlEstimator,
      gamma: cfg.gamma,
      lam: cfg.lam,
      whitenRewards: cfg.whiten_rewards,
      cliprange: cfg.cliprange,
      cliprangeValue: cfg.cliprange_value,
      vfCoef: cfg.vf_coef,
      numPpoEpochs: cfg.num_ppo_epochs,
      numMiniBatches: cfg.num_mini_batches,
      microBatch: cfg.per_device_train_batch_size,
      gradientAccumulationSteps: cfg.gradient_accumulation_steps,
      forwardBatch: cfg.local_rollout_forward_batch_size,
      headChunkRows: this.parts.headChunkRows,
    };
  }

  /** Update step + 1: its prompts, rollouts, rollout phase and PPO epochs at rate lr; TRL's metrics line. */
  async ownStep(step: number, lr: number, optimizer: Optimizer): Promise<OwnStepResult> {
    const { cfg, models, prompts, sizes } = this.parts;
    if (this.start === 0) this.start = performance.now();
    const u = step + 1;
    const epoch = Math.floor(step / sizes.perEpoch),
      idx = step % sizes.perEpoch;
    // Prompt order: a seeded permutation per pass (TRL's DataLoader draws from torch's global RNG, which sampling also consumes).
    const order = trainerEpochOrder(prompts.length, cfg.seed, epoch);
    const picked = Array.from(order.subarray(idx * sizes.batch, (idx + 1) * sizes.batch), (i) => prompts[i]);
    const uo = this.options();
    const batch = await sampleRollouts(models.policy, picked, {
      ...uo,
      responseLength: cfg.response_length,
      rng: this.rng,
    });
    const d = await rolloutPhase(models, batch, uo);
    // TRL shuffles the rollouts of each PPO epoch with numpy's unseeded global generator: tsdpo seeds it.
    const permutation = (n: number, e: number): Int32Array => trainerEpochOrder(n, cfg.seed * 7919 + u, e);
    const r = await ppoEpochs(models, optimizer, batch, d, uo, this.acc, {
      lr,
      endOfDataloader: idx === sizes.perEpoch - 1,
      permutation,
    });
    const episode = u * sizes.batch;
    const line: Record<string, number> = {
      episode,
      epoch: episode / prompts.length,
      eps: Math.trunc(episode / ((performance.now() - this.start) / 1000)),
      ...updateMetrics(d, r.stats, batch.B, batch.T, uo.eosId, lr),
    };
    if (cfg.adap_kl_ctrl) {
      line.kl_coef = this.klCtl.value;
      this.klCtl.update(line['objective/kl'], sizes.batch);
    }
    return { loss: line['loss/policy_avg'] + cfg.vf_coef * line['loss/value_avg'], line };
  }

  async afterStep(step: number): Promise<void> {
    await this.parts.afterUpdate?.(step, this.steps, this.parts.models.policy);
  }

  micro(): Promise<MicroResult> {
    throw new Error('PpoObjective: a PPO step is one update (ownStep); it has no micro-batches of its own');
  }

  async evaluate(): Promise<null> {
    return null;
  }

  state(): Record<string, unknown> {
    return { rng: this.rng.state(), kl_coef: this.klCtl.value, accumulation_step: this.acc.step };
  }

  restore(s: Record<string, unknown>): void {
    this.rng = new Rng(s.rng as number[]);
    this.klCtl.value = s.kl_coef as number;
    this.acc.step = s.accumulation_step as number;
  }

  /** The policy's weights (HF folder or adapter) and the critic's (value_model.safetensors, by parameter name). */
  async saveWeights(dir: string): Promise<void> {
    await this.policyWeights.save(dir);
    const tensors = await Promise.all(
      this.critic.map(async (p) => ({
        name: p.name,
        dtype: 'F32' as const,
        shape: [...p.tensor.shape],
        data: Float32Array.from(await p.tensor.toArray()),
      })),
    );
    writeSafetensors(join(dir, VALUE_FILE), tensors);
  }

  async loadWeights(dir: string): Promise<void> {
    await this.policyWeights.load(dir);
    const file = join(dir, VALUE_FILE);
    const saved = readSafetensors(file).tensors;
    for (const p of this.critic) {
      const t = saved.get(p.name);
      if (!t) throw new Error(`${file}: lacks ${p.name} (a checkpoint of another critic?)`);
      const data = t.toFloat32();
      if (data.length !== p.tensor.size)
        throw new Error(`${file}: ${p.name} has ${data.length} values, the critic's has ${p.tensor.size}`);
      p.tensor.backend.write(p.tensor.storage, data);
    }
  }
}

/** The critic's weights in a checkpoint folder. */
const VALUE_FILE = 'value_model.safetensors';

export async function runPpo(cfg: PpoConfig, opts: PpoRunOptions): Promise<PpoRunResult> {
  if (!cfg.reward)
    throw new Error(
      "--reward is required: a reward model folder (*ForSequenceClassification), 'sentiment', or a .mjs/.js module",
    );
  let eos = 0,
    pad = 0;
  let value: PpoModels['value'] | null = null;
  const { log, quiet, onRecord, onStep } = opts;
  const r = await runMethod(
    cfg,
    { log, quiet, onRecord, onStep },
    {
      command: 'ppo',
      noEval: true,
      unit: 'prompts',
      load: async (_path, _split, s) => {
        const tok = s.tok;
        if (tok.eosId === null)
          throw new Error(
            `${cfg.model_name_or_path}: the tokenizer has no EOS token; PPO needs one (stop_token eos, missing_eos_penalty, the score position)`,
          );
        eos = tok.eosId;
        const p = cfg.pad_token_id >= 0 ? cfg.pad_token_id : tok.padId;
        if (p === null || p === eos) {
          throw new Error(
            `${cfg.model_name_or_path}: the tokenizer's pad token ${p === null ? 'is unset' : `is EOS (id ${eos})`}; PPO marks the end of a response by pad, ` +
              'so pad must differ from EOS (TRL: tokenizer.add_special_tokens({"pad_token": "[PAD]"})). ' +
              `Pass --pad_token_id N, e.g. ${s.policy.vocabSize} ` +
              '(padded ids are fed to the model as 0, so an id past the vocabulary works)',
          );
        }
        pad = p;
        const positions = Number(s.policy.config.n_positions ?? Infinity);
        const prompts = await opts.readPrompts(tok, cfg.response_length, positions);
        return { examples: prompts, report: { prompts: prompts.length } };
      },
      describe: (_name, report) => `prompts: ${report.prompts} from ${cfg.dataset}`,
      objective: async (s, train, _eval, runLog) => {
        const prompts = train.examples;
        const sizes = ppoSizes(cfg, prompts.length);
        let ref: CausalLM | null = null;
        if (!s.lora || cfg.ref_model || cfg.adapter) {
          ref = loadModel(cfg.ref_model || cfg.model_name_or_path, { frozenDtype: s.frozenDtype });
          if (!cfg.ref_model && cfg.adapter) loadAdapter(ref, cfg.adapter);
        }
        const isFolder = existsSync(cfg.reward) && statSync(cfg.reward).isDirectory();
        const reward: PpoModels['reward'] = isFolder
          ? { kind: 'model', rm: loadRewardModel(cfg.reward) }
          : { kind: 'fn', fn: await opts.rewardFunction(cfg.reward), tok: s.tok };
        if (reward.kind === 'model' && reward.rm.labels.length !== 1)
          throw new Error(
            `${cfg.reward}: a PPO reward model has one label (its score); this one has ${reward.rm.labels.length}`,
          );
        if (isFolder) sameTokenizer(cfg.reward, cfg.model_name_or_path);
        value = cfg.value_model
          ? valueFromRewardFolder(cfg.value_model)
          : isFolder
            ? valueFromRewardFolder(cfg.reward)
            : valueFromPolicy(cfg.model_name_or_path);
        runLog(
          `value model: ${
            cfg.value_model ||
            (isFolder
              ? `${cfg.reward} (the reward model's weights)`
              : `${cfg.model_name_or_path}'s backbone with a zero value head`)
          }`,
        );
        runLog(
          `ppo: ${prompts.length} prompts, ${sizes.total} updates of ${sizes.batch} rollouts (${sizes.perEpoch} per pass over the prompts), ` +
            `${cfg.num_ppo_epochs} PPO epochs x ${cfg.num_mini_batches} mini-batches each`,
        );
        const objective = new PpoObjective(
          {
            cfg,
            models: { policy: s.policy, ref, value, reward },
            policyParams: s.params,
            prompts,
            sizes,
            padId: pad,
            eosId: eos,
            afterUpdate: opts.afterUpdate,
            headChunkRows: opts.headChunkRows,
          },
          { save: s.saveWeights, load: s.loadWeights },
        );
        return { objective, refModel: ref };
      },
      afterSave: async () => {
        if (cfg.save_value && value) await saveValueModel(value, join(cfg.output_dir, 'value_model'));
      },
    },
  );
  if (r.stopped) throw new Error(`ppo: ${r.stopped}`);
  return { updates: r.steps, history: r.history, output: r.output };
}
