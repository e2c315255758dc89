// The training loop shared by every method (dpo, sft, kto, reward, grpo, rloo, ppo, the demo's
// pretraining): micro-batches with gradient accumulation, clipping, the learning-rate schedule,
// metrics, evaluation, checkpoints every save_steps, resuming a killed run exactly, and stopping on
// a non-finite loss. A method whose step is not one optimizer update (PPO) brings its own step
// (Objective.ownStep) and keeps the rest. No file access: a run with an output_dir writes through a
// RunFolder (train/trainer.ts's in Node); without one everything stays in memory.
import { EpochSampler } from '../data/sampler.js';
import { LoraDropout } from '../nn/linear.js';
import type { TrainerState } from './checkpoint.js';
import type { CommonConfig } from './config.js';
import { clipGradNorm, decays, Optimizer, type NamedParam, type OptimizerName } from './optim.js';
import type { Progress } from './progress.js';
import { lrMultiplier, warmupSteps, type ScheduleName } from './schedule.js';
import { trainerEpochOrder } from './torch-order.js';

/**
 * What the loop reads of a configuration: the shared options, with the schedule widened to those
 * no command offers as a flag ('cosine_with_min_lr', the demo's pretraining) and its floor.
 */
export type TrainConfig = Omit<CommonConfig, 'lr_scheduler_type'> & {
  lr_scheduler_type: ScheduleName;
  /** 'cosine_with_min_lr': the rate decays to learning_rate * min_lr_rate (transformers' lr_scheduler_kwargs). */
  min_lr_rate?: number;
};

/** One micro-batch's result: the loss already backpropagated, and metrics to average. */
export interface MicroResult {
  loss: number;
  metrics: Record<string, number>;
  /** Tokens processed (for tokens_per_second). */
  tokens: number;
}

/** What a training objective (DPO, SFT, KTO, reward, GRPO / RLOO, PPO, pretraining) provides to the loop. */
export interface Objective {
  /** Training examples. */
  readonly size: number;
  readonly params: NamedParam[];
  /** LoRA dropout while training (0 without an adapter or dropout). */
  readonly loraDropout: number;
  /** Examples in data order every epoch (a sequential sampler, TRL KTO's default) instead of shuffled. */
  readonly sequential?: boolean;
  /**
   * A stream of examples (packed token blocks, as nanoGPT's loader): every micro-batch is full and runs
   * on into the next epoch's order, and a step takes gradient_accumulation_steps micro-batches even at
   * an epoch's end. Default false: transformers' rule (a batch, and a step, never spans two epochs).
   */
  readonly stream?: boolean;
  /**
   * Which parameters (by name) weight decay applies to: the decayed group and the rest (default:
   * transformers' rule, not to biases and normalisation weights).
   */
  readonly decayed?: (name: string) => boolean;
  /**
   * Forward + backward of the examples `indices`, the loss scaled by `scale` (its share of the step),
   * the policy's training forward with `dropout` (null when loraDropout is 0).
   */
  micro(indices: number[], scale: number, step: number, dropout?: LoraDropout | null): Promise<MicroResult>;
  /**
   * The share of the step's loss each micro-batch of a step carries (default: 1 / micro-batches).
   * SFT: its share of the step's loss tokens, as transformers' num_items_in_batch.
   */
  microWeights?(batches: number[][]): number[];
  /** After optimizer step `step` (1-based), before its logging and evaluation (TRL's on_step_end callbacks). */
  afterStep?(step: number): Promise<void>;
  /** Metrics on the held-out set after optimizer step `step` (keys get the eval_ prefix), or null without one. */
  evaluate(step?: number): Promise<Record<string, number> | null>;
  /** Writes the trained weights (HF folder or PEFT adapter) into dir. */
  saveWeights(dir: string): Promise<void>;
  /** Restores weights from a checkpoint folder written by saveWeights. */
  loadWeights(dir: string): Promise<void>;
  /** The order of an epoch's examples (default: transformers' Trainer order); GRPO / RLOO repeat each prompt. */
  readonly permutation?: (size: number, seed: number, epoch: number) => Int32Array;
  /** Called before a step's micro-batches with all their indices (GRPO / RLOO sample the step's completions here). */
  beginStep?(step: number, batches: number[][]): Promise<void>;
  /**
   * A step that takes its own optimizer updates (PPO: sample and score a batch of rollouts, then
   * num_ppo_epochs x num_mini_batches updates at the step's rate `lr`), called instead of the
   * micro-batches, the clipping and the one update. Its line is logged as it is, every step, and
   * the run ends without transformers' summary line.
   */
  ownStep?(step: number, lr: number, optimizer: Optimizer): Promise<OwnStepResult>;
  /** The run's steps, when the objective counts them itself (PPO: updates of a batch of rollouts). */
  readonly steps?: number;
  /**
   * What a checkpoint keeps beyond the weights, the optimizer and the data position (PPO's generator and KL
   * coefficient).
   */
  state?(): Record<string, unknown>;
  /** Restores what state() returned, on resume. */
  restore?(state: Record<string, unknown>): void;
}

/** One step of an objective that steps itself: its loss (checked for a finite value) and its metrics line. */
export interface OwnStepResult {
  loss: number;
  line: Record<string, number>;
}

export interface TrainResult {
  steps: number;
  /** Every logged line (train and eval). */
  history: Record<string, number>[];
  stopped?: string;
}

export class NonFiniteLossError extends Error {}

/** Consecutive index batches of at most `size` over [0, n) (evaluation order). */
export function* batchesOf(n: number, size: number): Generator<number[]> {
  for (let i = 0; i < n; i += size) yield Array.from({ length: Math.min(size, n - i) }, (_, k) => i + k);
}

/**
 * Evaluation over n examples in batches of `size`, as transformers' evaluation loop and TRL: the loss
 * is a mean over examples, every other metric a mean over batches.
 */
export async function evaluateInBatches(
  n: number,
  size: number,
  run: (indices: number[]) => Promise<MicroResult>,
): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  let batches = 0,
    loss = 0;
  for (const idx of batchesOf(n, size)) {
    const r = await run(idx);
    loss += r.loss * idx.length;
    for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v;
    batches++;
  }
  const out: Record<string, number> = { loss: loss / n };
  for (const [k, v] of Object.entries(sums)) out[k] = v / batches;
  return out;
}

function optimizerName(optim: CommonConfig['optim']): OptimizerName {
  return optim === 'adamw_torch' ? 'adamw' : optim;
}

export function totalSteps(cfg: TrainConfig, size: number): number {
  if (cfg.max_steps > 0) return cfg.max_steps;
  const batchesPerEpoch = Math.ceil(size / cfg.per_device_train_batch_size);
  const stepsPerEpoch = Math.max(1, Math.ceil(batchesPerEpoch / cfg.gradient_accumulation_steps));
  return Math.ceil(stepsPerEpoch * cfg.num_train_epochs);
}

export interface TrainOptions {
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
  /** No progress bar / lines. */
  quiet?: boolean;
  /** The progress bar's label (default 'train'). */
  label?: string;
  /** The configuration to record in trainer_state.json. */
  record?: Record<string, unknown>;
  /** Logs the memory split (train/memory.ts) after the first step and at the end (--memory_report). */
  memory?: { line(optimizer: Optimizer, when: string): string } | null;
  /** Called with every metrics line as it is recorded (train, eval and the final summary). */
  onRecord?: (line: Record<string, number>) => void;
  /** Called after every optimizer step with the step's loss. */
  onStep?: (step: number, total: number, loss: number) => void;
}

/** TrainOptions of the loop itself: where the files of a run with an output_dir go, and its progress bar. */
export interface LoopOptions extends TrainOptions {
  /** The run's folder; required with an output_dir (train/trainer.ts's train gives Node's). */
  folder?: RunFolder;
  /** The progress bar (default: none; train/trainer.ts's train gives train/progress.ts's). */
  progress?: (label: string, total: number, opts: { silent?: boolean }) => Progress;
}

/**
 * Where a run with an output_dir keeps metrics.jsonl, its checkpoints and trainer_state.json
 * (train/trainer.ts's runFolder in Node).
 */
export interface RunFolder {
  /** The latest complete checkpoint: its folder, trainer state and optimizer state; null when none yet. */
  latest(): { dir: string; state: TrainerState; optimizer: Map<string, Float32Array> } | null;
  /** Replaces metrics.jsonl with `lines`. */
  writeMetrics(lines: Record<string, number>[]): void;
  /** Appends one line to metrics.jsonl. */
  appendMetrics(line: Record<string, number>): void;
  /**
   * Writes checkpoint-<step> (weights by `saveWeights`, then optimizer and trainer state); keeps the
   * last `keep` (0: all).
   */
  checkpoint(
    state: TrainerState,
    optimizer: Optimizer,
    saveWeights: (dir: string) => Promise<void>,
    keep: number,
  ): Promise<string>;
  /** Writes trainer_state.json. */
  writeState(state: TrainerState): void;
}

const silentProgress = (): Progress => ({ update: () => {}, log: () => {}, stop: () => {} });

/**
 * Runs the loop. With an output_dir it writes metrics.jsonl, checkpoints and trainer_state.json there
 * (Node); with output_dir '' it keeps everything in memory (library use, browsers): no files, no
 * checkpoints, no resume, the metrics only in the result and through `onRecord`.
 */
export async function train(cfg: TrainConfig, obj: Objective, opts: LoopOptions = {}): Promise<TrainResult> {
  const out = cfg.output_dir;
  const folder = out !== '' ? opts.folder : null;
  if (folder === undefined)
    throw new Error(`train: output_dir '${out}' needs a run folder (train/trainer.ts's train writes one in Node)`);
  const total = obj.steps ?? totalSteps(cfg, obj.size);
  const warmup = warmupSteps(cfg.warmup_steps, cfg.warmup_ratio, total);
  const ga = cfg.gradient_accumulation_steps,
    bs = cfg.per_device_train_batch_size;
  // transformers' order (torch.randperm seeded with seed + epoch), so that a TRL run sees the same batches.
  const sampler = new EpochSampler(obj.size, {
    seed: cfg.data_seed >= 0 ? cfg.data_seed : cfg.seed,
    permutation: obj.permutation ?? trainerEpochOrder,
    shuffle: !obj.sequential,
  });
  const optimizer = new Optimizer(obj.params, {
    name: optimizerName(cfg.optim),
    beta1: cfg.adam_beta1,
    beta2: cfg.adam_beta2,
    eps: cfg.adam_epsilon,
    weightDecay: cfg.weight_decay,
    decayed: obj.decayed ?? decays,
    momentum: 0,
    alpha: 0.99,
  });
  let step = 0;
  let history: Record<string, number>[] = [];

  if (cfg.resume_from_checkpoint && !folder)
    throw new Error('resume_from_checkpoint needs an output_dir holding the run');
  if (cfg.resume_from_checkpoint && folder) {
    const ck = folder.latest();
    if (ck) {
      const state = ck.state;
      await obj.loadWeights(ck.dir);
      optimizer.loadState(state.optimizer_step, ck.optimizer);
      sampler.restore(state.sampler);
      if (state.objective) obj.restore?.(state.objective);
      step = state.global_step;
      history = state.log_history;
      // Lines a killed run logged after its last checkpoint are replaced by the resumed run's.
      folder.writeMetrics(history);
      (opts.log ?? defaultLog)(`resuming from ${ck.dir} (step ${step} of ${total})`);
    } else {
      (opts.log ?? defaultLog)(`--resume: no checkpoint in ${out} yet; starting from step 0`);
    }
  }
  if (step === 0 && folder) folder.writeMetrics([]);

  // A stream's micro-batch that reaches the end of an epoch is filled from the next epoch's order.
  const nextBatch = (): number[] => {
    const indices = sampler.next(bs).indices;
    while (obj.stream && indices.length < bs) indices.push(...sampler.next(bs - indices.length).indices);
    return indices;
  };
  const bar = (opts.progress ?? silentProgress)(opts.label ?? 'train', total, { silent: opts.quiet });
  const log = (line: string): void => (opts.log ? opts.log(line) : bar.log(line));
  const record = (line: Record<string, number>): void => {
    history.push(line);
    folder?.appendMetrics(line);
    opts.onRecord?.(line);
  };
  const state = (): TrainerState => ({
    global_step: step,
    epoch: epochOf(),
    sampler: sampler.state(),
    optimizer_step: optimizer.step,
    log_history: history,
    config: opts.record ?? {},
    ...(obj.state ? { objective: obj.state() } : {}),
  });
  // As transformers: epochs done + micro-batches done in this epoch / micro-batches per epoch.
  const epochOf = (): number => {
    const p = sampler.position;
    return p.epoch + Math.ceil(p.index / bs) / Math.ceil(obj.size / bs);
  };
  const checkpoint = async (): Promise<void> => {
    if (!folder) return;
    const dir = await folder.checkpoint(state(), optimizer, (d) => obj.saveWeights(d), cfg.save_total_limit);
    log(`checkpoint ${dir}`);
  };

  // Metric sums and how many micro-batches reported each (a metric may be absent from some, e.g.
  // KTO's rewards/chosen from a micro-batch without desirable examples, GRPO's rollout metrics
  // reported once per generation: TRL averages those it has).
  const sums: Record<string, number> = {},
    counts: Record<string, number> = {};
  let count = 0,
    microCount = 0,
    tokens = 0,
    windowStart = performance.now(),
    lastGradNorm = 0;
  // Tokens (attention mask) of every training micro-batch so far: TRL's num_tokens. Not part of a
  // checkpoint: a resumed run counts from its resume point.
  let trainTokens = 0,
    lossSum = 0,
    lossSteps = 0;
  const runStart = performance.now(),
    startStep = step;
  let stopped: string | undefined;
  try {
    while (step < total) {
      const lr = cfg.learning_rate * lrMultiplier(cfg.lr_scheduler_type, step, warmup, total, cfg.min_lr_rate);
      if (obj.ownStep) {
        const r = await obj.ownStep(step, lr, optimizer);
        if (!Number.isFinite(r.loss)) throw new NonFiniteLossError(`loss is ${r.loss} at step ${step + 1}`);
        step++;
        await obj.afterStep?.(step);
        bar.update(step, `loss ${r.loss.toFixed(4)}`);
        opts.onStep?.(step, total, r.loss);
        if (opts.memory && (step === startStep + 1 || step === total)) log(opts.memory.line(optimizer, `step ${step}`));
        record({ step, ...r.line });
        if (cfg.save_steps > 0 && step % cfg.save_steps === 0 && step < total) await checkpoint();
        continue;
      }
      let stepLoss = 0;
      // As transformers: a step never spans two epochs; the epoch's last step takes the micro-batches
      // left (fewer than gradient_accumulation_steps when they do not divide) and averages over those.
      const left = Math.ceil((obj.size - sampler.position.index) / bs);
      const micros = left > 0 && !obj.stream ? Math.min(ga, left) : ga;
      const batches = Array.from({ length: micros }, () => nextBatch());
      const weights = obj.microWeights?.(batches) ?? batches.map(() => 1 / micros);
      await obj.beginStep?.(step, batches);
      for (let m = 0; m < micros; m++) {
        const indices = batches[m];
        // Dropout masks depend only on (seed, step, micro-batch): a resumed run draws the same ones.
        const dropout =
          obj.loraDropout > 0 ? new LoraDropout(obj.loraDropout, cfg.seed * 1000003 + step * 7919 + m) : null;
        const r = await obj.micro(indices, weights[m], step, dropout);
        if (!Number.isFinite(r.loss))
          throw new NonFiniteLossError(
            `loss is ${r.loss} at step ${step + 1} (micro-batch ${m + 1}, ` +
              `examples ${indices.slice(0, 8).join(', ')}${indices.length > 8 ? ', ...' : ''})`,
          );
        stepLoss += r.loss * weights[m];
        // Metrics are means over the window's micro-batches (TRL appends one value per micro-batch).
        for (const [k, v] of Object.entries(r.metrics)) {
          sums[k] = (sums[k] ?? 0) + v;
          counts[k] = (counts[k] ?? 0) + 1;
        }
        microCount++;
        tokens += r.tokens;
        trainTokens += r.tokens;
      }
      const gradNorm = await clipGradNorm(obj.params, cfg.max_grad_norm);
      if (!Number.isFinite(gradNorm)) throw new NonFiniteLossError(`gradient norm is ${gradNorm} at step ${step + 1}`);
      optimizer.update(lr);
      optimizer.zeroGrad();
      step++;
      sums.loss = (sums.loss ?? 0) + stepLoss;
      lastGradNorm = gradNorm;
      lossSum += stepLoss;
      lossSteps++;
      count++;
      await obj.afterStep?.(step);
      bar.update(step, `loss ${stepLoss.toFixed(4)}`);
      opts.onStep?.(step, total, stepLoss);
      if (opts.memory && (step === startStep + 1 || step === total)) log(opts.memory.line(optimizer, `step ${step}`));

      const evalEvery = cfg.eval_steps > 0 ? cfg.eval_steps : cfg.logging_steps;
      if (step % cfg.logging_steps === 0 || step === total) {
        const secs = (performance.now() - windowStart) / 1000;
        // As transformers 5 (verified by test/reference): the loss and metrics are means over the
        // window's steps, grad_norm is the last step's, learning_rate the rate that step used.
        const line: Record<string, number> = {
          step,
          epoch: epochOf(),
          loss: sums.loss / count,
          grad_norm: lastGradNorm,
          learning_rate: lr,
        };
        for (const [k, v] of Object.entries(sums)) if (!(k in line)) line[k] = v / (counts[k] ?? microCount);
        line.num_tokens = trainTokens;
        line.tokens_per_second = Math.round(tokens / Math.max(1e-9, secs));
        record(line);
        log(formatLine(line));
        for (const k of Object.keys(sums)) delete sums[k];
        for (const k of Object.keys(counts)) delete counts[k];
        count = 0;
        tokens = 0;
        windowStart = performance.now();
      }
      if (step % evalEvery === 0 || step === total) {
        const ev = await obj.evaluate(step);
        if (ev) {
          const line: Record<string, number> = { step, epoch: epochOf() };
          for (const [k, v] of Object.entries({ ...ev, num_tokens: trainTokens })) line[`eval_${k}`] = v;
          record(line);
          log(formatLine(line));
        }
      }
      if (cfg.save_steps > 0 && step % cfg.save_steps === 0 && step < total) await checkpoint();
    }
    // transformers' train_runtime is the training loop's: the final checkpoint (written for --resume;
    // transformers writes one only when save_steps divides the last step) is not in it.
    const secs = (performance.now() - runStart) / 1000;
    await checkpoint();
    if (!obj.ownStep) {
      // The run's summary, as transformers' last log line: train_loss is the mean loss of the steps run.
      const summary: Record<string, number> = {
        step,
        epoch: epochOf(),
        train_loss: lossSum / Math.max(1, lossSteps),
        train_runtime: secs,
        train_samples_per_second: ((step - startStep) * bs * ga) / Math.max(1e-9, secs),
        train_steps_per_second: (step - startStep) / Math.max(1e-9, secs),
      };
      record(summary);
    }
  } catch (e) {
    if (!(e instanceof NonFiniteLossError)) throw e;
    stopped = folder
      ? `${e.message}; stopped. The last good checkpoint in ${out} is kept ` +
        '(resume with --resume after fixing the cause, e.g. a lower learning_rate).'
      : `${e.message}; stopped (e.g. lower the learning_rate).`;
    log(stopped);
  } finally {
    bar.stop();
  }
  folder?.writeState(state());
  optimizer.dispose();
  return { steps: step, history, stopped };
}

function formatLine(line: Record<string, number>): string {
  return Object.entries(line)
    .map(
      ([k, v]) => `${k}=${Number.isInteger(v) ? v : Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(3) : v.toFixed(4)}`,
    )
    .join(' ');
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}
