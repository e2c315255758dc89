// `tsdpo ppo` end to end: models (policy, reference, reward, critic), the prompt batches, rollouts
// sampled with the KV-cache sampler, one PPO update per batch (ppo.ts), metrics.jsonl, and the
// trained policy (and, with save_value, the critic) in output_dir.
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tidyAsync } from '../core/index.js';
import { Rng } from '../core/random.js';
import { generate } from '../eval/generate.js';
import { loadRewardModel } from '../eval/reward-model.js';
import type { EvalPrompt, RewardFn } from '../eval/sample.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { decays, Optimizer } from '../train/optim.js';
import { progress } from '../train/progress.js';
import { finish, setup } from '../train/run.js';
import { lrMultiplier, warmupSteps } from '../train/schedule.js';
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

type Log = (line: string) => void;

export interface PpoRunOptions {
  log?: Log;
  quiet?: boolean;
  /** Reads the prompts file (the CLI's reader: .txt / .jsonl / .json / .parquet, chat templates). */
  readPrompts(tok: TextTokenizer, maxNewTokens: number, maxPositions: number): Promise<EvalPrompt[]>;
  /** Resolves a --reward that is not a folder ('sentiment' or a module) to a function. */
  rewardFunction(spec: string): Promise<RewardFn>;
  /** Called after each update with the policy being trained (the demo evaluates it at chosen updates). */
  afterUpdate?(update: number, total: number, policy: CausalLM): Promise<void>;
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
        'without re-tokenizing text, so they must share a vocabulary: train the reward model from this policy (tsdpo reward), or pass a reward function (sentiment or a module), which scores text',
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

export async function runPpo(cfg: PpoConfig, opts: PpoRunOptions): Promise<PpoRunResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!cfg.reward)
    throw new Error(
      "--reward is required: a reward model folder (*ForSequenceClassification), 'sentiment', or a .mjs/.js module",
    );
  const s = await setup(cfg, log);
  const tok = s.tok;
  const eos = tok.eosId;
  if (eos === null)
    throw new Error(
      `${cfg.model_name_or_path}: the tokenizer has no EOS token; PPO needs one (stop_token eos, missing_eos_penalty, the score position)`,
    );
  const pad = cfg.pad_token_id >= 0 ? cfg.pad_token_id : tok.padId;
  if (pad === null || pad === eos) {
    throw new Error(
      `${cfg.model_name_or_path}: the tokenizer's pad token ${pad === null ? 'is unset' : `is EOS (id ${eos})`}; PPO marks the end of a response by pad, ` +
        `so pad must differ from EOS (TRL: tokenizer.add_special_tokens({"pad_token": "[PAD]"})). Pass --pad_token_id N, e.g. ${s.policy.vocabSize} (padded ids are fed to the model as 0, so an id past the vocabulary works)`,
    );
  }
  const positions = Number(s.policy.config.n_positions ?? Infinity);
  const prompts = await opts.readPrompts(tok, cfg.response_length, positions);
  const sizes = ppoSizes(cfg, prompts.length);

  let ref: CausalLM | null = null;
  if (!s.lora || cfg.ref_model || cfg.adapter) {
    ref = loadModel(cfg.ref_model || cfg.model_name_or_path, { frozenDtype: s.frozenDtype });
    if (!cfg.ref_model && cfg.adapter) loadAdapter(ref, cfg.adapter);
  }
  const isFolder = existsSync(cfg.reward) && statSync(cfg.reward).isDirectory();
  const reward: PpoModels['reward'] = isFolder
    ? { kind: 'model', rm: loadRewardModel(cfg.reward) }
    : { kind: 'fn', fn: await opts.rewardFunction(cfg.reward), tok };
  if (reward.kind === 'model' && reward.rm.labels.length !== 1)
    throw new Error(
      `${cfg.reward}: a PPO reward model has one label (its score); this one has ${reward.rm.labels.length}`,
    );
  if (isFolder) sameTokenizer(cfg.reward, cfg.model_name_or_path);
  const value = cfg.value_model
    ? valueFromRewardFolder(cfg.value_model)
    : isFolder
      ? valueFromRewardFolder(cfg.reward)
      : valueFromPolicy(cfg.model_name_or_path);
  log(
    `value model: ${cfg.value_model || (isFolder ? `${cfg.reward} (the reward model's weights)` : `${cfg.model_name_or_path}'s backbone with a zero value head`)}`,
  );
  const models: PpoModels = { policy: s.policy, ref, value, reward };
  const params = [...policyParams(s.params), ...valueParams(value)];
  const optimizer = new Optimizer(params, {
    name: cfg.optim === 'adamw_torch' ? 'adamw' : (cfg.optim as 'adamw' | 'rmsprop' | 'sgd'),
    beta1: cfg.adam_beta1,
    beta2: cfg.adam_beta2,
    eps: cfg.adam_epsilon,
    weightDecay: cfg.weight_decay,
    decayed: decays,
    momentum: 0,
    alpha: 0.99,
  });
  const klCtl = new AdaptiveKl(cfg.adap_kl_ctrl ? cfg.init_kl_coef : cfg.kl_coef, cfg.target, cfg.horizon);
  const o = (): PpoUpdateOptions => ({
    temperature: cfg.temperature,
    padId: pad,
    eosId: eos,
    stopId: cfg.stop_token === 'eos' ? eos : null,
    missingEosPenalty: cfg.missing_eos_penalty >= 0 ? cfg.missing_eos_penalty : null,
    klCoef: klCtl.value,
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
  });
  log(
    `ppo: ${prompts.length} prompts, ${sizes.total} updates of ${sizes.batch} rollouts (${sizes.perEpoch} per pass over the prompts), ` +
      `${cfg.num_ppo_epochs} PPO epochs x ${cfg.num_mini_batches} mini-batches each`,
  );

  const metricsFile = join(cfg.output_dir, 'metrics.jsonl');
  writeFileSync(metricsFile, '');
  const history: Record<string, number>[] = [];
  const rng = new Rng(cfg.seed);
  const warmup = warmupSteps(cfg.warmup_steps, cfg.warmup_ratio, sizes.total);
  const acc = { step: 0 };
  const bar = progress('ppo', sizes.total, { silent: opts.quiet });
  const start = performance.now();
  try {
    for (let u = 1; u <= sizes.total; u++) {
      const epoch = Math.floor((u - 1) / sizes.perEpoch),
        idx = (u - 1) % sizes.perEpoch;
      // Prompt order: a seeded permutation per pass (TRL's DataLoader draws from torch's global RNG, which sampling also consumes).
      const order = trainerEpochOrder(prompts.length, cfg.seed, epoch);
      const picked = Array.from(order.subarray(idx * sizes.batch, (idx + 1) * sizes.batch), (i) => prompts[i]);
      const uo = o();
      const batch = await sampleRollouts(s.policy, picked, { ...uo, responseLength: cfg.response_length, rng });
      const d = await rolloutPhase(models, batch, uo);
      const lr = cfg.learning_rate * lrMultiplier(cfg.lr_scheduler_type, u - 1, warmup, sizes.total);
      // TRL shuffles the rollouts of each PPO epoch with numpy's unseeded global generator: tsdpo seeds it.
      const permutation = (n: number, e: number): Int32Array => trainerEpochOrder(n, cfg.seed * 7919 + u, e);
      const r = await ppoEpochs(models, optimizer, batch, d, uo, acc, {
        lr,
        endOfDataloader: idx === sizes.perEpoch - 1,
        permutation,
      });
      const episode = u * sizes.batch;
      const line: Record<string, number> = {
        step: u,
        episode,
        epoch: episode / prompts.length,
        eps: Math.trunc(episode / ((performance.now() - start) / 1000)),
        ...updateMetrics(d, r.stats, batch.B, batch.T, eos, lr),
      };
      if (cfg.adap_kl_ctrl) {
        line.kl_coef = klCtl.value;
        klCtl.update(line['objective/kl'], sizes.batch);
      }
      history.push(line);
      appendFileSync(metricsFile, `${JSON.stringify(line)}\n`);
      bar.update(u, `score ${line['objective/scores'].toFixed(4)} kl ${line['objective/kl'].toFixed(3)}`);
      if (!Number.isFinite(line['loss/policy_avg']) || !Number.isFinite(line['loss/value_avg'])) {
        throw new Error(
          `ppo: non-finite loss at update ${u} (policy ${line['loss/policy_avg']}, value ${line['loss/value_avg']}); try a lower learning_rate`,
        );
      }
      await opts.afterUpdate?.(u, sizes.total, s.policy);
    }
  } finally {
    bar.stop();
    optimizer.dispose();
  }
  await finish(cfg, s);
  if (cfg.save_value) await saveValueModel(value, join(cfg.output_dir, 'value_model'));
  return { updates: sizes.total, history, output: cfg.output_dir };
}
