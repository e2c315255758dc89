// Whole runs in Node, from a configuration to an output folder, exactly as the CLI runs them
// (`tsdpo dpo --model ... --output ...` is runTraining('dpo', { model_name_or_path, ..., output_dir })):
// the model and data are read from model_name_or_path and dataset, and the output folder receives
// metrics.jsonl, checkpoints and the trained model (or adapter).
import { GRPO_OPTIONS, RLOO_OPTIONS, type GrpoConfig, type RlooConfig } from '../rl/grpo-config.js';
import { runGrpo, runRloo } from '../rl/grpo-run.js';
import {
  coerce,
  defaultsOf,
  DPO_SPECS,
  SFT_SPECS,
  type DpoConfig,
  type OptionSpec,
  type SftConfig,
} from '../train/config.js';
import { KTO_SPECS, type KtoConfig } from '../train/kto.js';
import { runKto } from '../train/kto-run.js';
import { rewardConfig, REWARD_SPECS, type RewardConfig } from '../train/reward-config.js';
import { runReward } from '../train/run-reward.js';
import { runDpo, runSft, type RunOptions, type RunSummary } from '../train/run.js';
import { Run, type TrainEvent } from './events.js';

export type { RunSummary } from '../train/run.js';

/** The methods `runTraining` runs, each with its option table (TRL's names, types, defaults, help). */
export const RUN_METHODS: { readonly [M in RunMethod]: Readonly<Record<string, OptionSpec>> } = {
  dpo: DPO_SPECS,
  sft: SFT_SPECS,
  kto: KTO_SPECS,
  reward: REWARD_SPECS,
  grpo: GRPO_OPTIONS,
  rloo: RLOO_OPTIONS,
};

/** A method of `runTraining`. */
export type RunMethod = 'dpo' | 'sft' | 'kto' | 'reward' | 'grpo' | 'rloo';

/** The configuration of each method of `runTraining`. */
export interface RunConfigs {
  dpo: DpoConfig;
  sft: SftConfig;
  kto: KtoConfig;
  reward: RewardConfig;
  grpo: GrpoConfig;
  rloo: RlooConfig;
}

/**
 * The full configuration of `method`: its defaults, then `given`, each value checked against its option's type and
 * choices.
 */
export function runConfig<M extends RunMethod>(method: M, given: Partial<RunConfigs[M]>): RunConfigs[M] {
  const specs: Record<string, OptionSpec> = RUN_METHODS[method];
  const cfg = defaultsOf(specs) as Record<string, unknown>;
  for (const [key, value] of Object.entries(given)) {
    const spec = specs[key];
    if (!spec) throw new Error(`runTraining('${method}'): unknown option '${key}' (see tsdpo ${method} --help)`);
    if (value !== undefined) cfg[key] = coerce(key, spec, value, `runTraining('${method}')`);
  }
  return (method === 'reward' ? rewardConfig(cfg as Parameters<typeof rewardConfig>[0]) : cfg) as RunConfigs[M];
}

/** How `runTraining` reports. */
export interface RunTrainingOptions {
  /**
   * Report on the terminal as the CLI does (log lines and a progress bar on stderr) instead of as
   * 'log' events. Default false: nothing is printed.
   */
  terminal?: boolean;
}

/**
 * Runs `method` ('dpo', 'sft', 'kto', 'reward', 'grpo' or 'rloo') from `config` (TRL's names;
 * model_name_or_path, dataset and output_dir are required) as `tsdpo <method>` does. Returns at
 * once; the run reports events (`for await (const e of run)`: log lines, metrics and steps) and
 * resolves to a summary. It initialises the engine on config.device itself.
 */
export function runTraining<M extends RunMethod>(
  method: M,
  config: Partial<RunConfigs[M]>,
  o: RunTrainingOptions = {},
): Run<TrainEvent, RunSummary> {
  return new Run<TrainEvent, RunSummary>(async (emit) => {
    await Promise.resolve(); // let the caller subscribe before the first event
    const opts: RunOptions = {
      ...(o.terminal ? {} : { quiet: true, log: (message: string) => emit({ type: 'log', message }) }),
      onRecord: (metrics) => emit({ type: 'metrics', metrics }),
      onStep: (step, total, loss) => emit({ type: 'step', step, total, loss }),
    };
    const cfg = runConfig(method, config);
    switch (method) {
      case 'dpo':
        return runDpo(cfg as DpoConfig, opts);
      case 'sft':
        return runSft(cfg as SftConfig, opts);
      case 'kto':
        return runKto(cfg as KtoConfig, opts);
      case 'reward':
        return runReward(cfg as RewardConfig, opts);
      case 'grpo':
        return runGrpo(cfg as GrpoConfig, opts);
      default:
        return runRloo(cfg as RlooConfig, opts);
    }
  });
}
