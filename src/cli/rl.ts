// `tsdpo grpo` and `tsdpo rloo`: flags (TRL names) from the option tables, then the run.
import { Command } from 'commander';
import type { RunSummary } from '../train/run.js';
import type { ConfigOf, OptionSpec } from '../train/config.js';
import { GRPO_OPTIONS, RLOO_OPTIONS } from '../rl/grpo-config.js';
import { runTraining } from '../api/run.js';
import { addOptions, resolveOptions } from './options.js';

const AFTER =
  '\nData: prompts only (.jsonl / .json / .parquet with a prompt column, text or chat messages).\n' +
  'per_device_train_batch_size counts completions: a step samples per_device_train_batch_size x\n' +
  'gradient_accumulation_steps / num_generations prompts, num_generations completions each.\n' +
  'Metrics (TRL 1.13 names: reward, reward_std, rewards/<name>/mean, completions/*, clip_ratio/*, entropy, kl)\n' +
  'go to OUTPUT/metrics.jsonl.';

function rlCommand<T extends Record<string, OptionSpec>>(
  name: string,
  description: string,
  specs: T,
  run: (cfg: ConfigOf<T>) => PromiseLike<RunSummary>,
): Command {
  const cmd = new Command(name)
    .description(
      `${description}\nMinimal use: tsdpo ${name} --model DIR --data PROMPTS --reward_funcs sentiment --output DIR`,
    )
    .addHelpText('after', AFTER);
  addOptions(cmd, specs);
  cmd.action(async () => {
    const r = await run(resolveOptions(cmd, specs));
    if (r.stopped) process.exitCode = 2;
    else process.stderr.write(`done: ${r.steps} steps; model in ${r.output}\n`);
  });
  return cmd;
}

export const grpoCommand = (): Command =>
  rlCommand(
    'grpo',
    'Group Relative Policy Optimization from prompts and rewards (arXiv:2402.03300; TRL 1.13 GRPOTrainer).\n' +
      "Samples num_generations completions per prompt, scores them, and pushes up those above their group's mean.",
    GRPO_OPTIONS,
    (cfg) => runTraining('grpo', cfg, { terminal: true }),
  );

export const rlooCommand = (): Command =>
  rlCommand(
    'rloo',
    'REINFORCE Leave-One-Out from prompts and rewards (arXiv:2402.14740; TRL 1.13 RLOOTrainer).\n' +
      "Each completion's baseline is the mean reward of its prompt's other completions; the KL to the reference is\n" +
      'folded into the reward.',
    RLOO_OPTIONS,
    (cfg) => runTraining('rloo', cfg, { terminal: true }),
  );
