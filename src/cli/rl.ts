// `tsdpo grpo` and `tsdpo rloo`: flags (TRL names) from the option tables, then the run.
import { Command } from 'commander';
import { GRPO_OPTIONS, RLOO_OPTIONS } from '../rl/config.js';
import { runGrpo, runRloo } from '../rl/run.js';
import { addOptions, resolveOptions } from './options.js';

const AFTER = '\nData: prompts only (.jsonl / .json / .parquet with a prompt column, text or chat messages).\n' +
  'per_device_train_batch_size counts completions: a step samples per_device_train_batch_size x\n' +
  'gradient_accumulation_steps / num_generations prompts, num_generations completions each.\n' +
  'Metrics (TRL 1.13 names: reward, reward_std, rewards/<name>/mean, completions/*, clip_ratio/*, entropy, kl)\n' +
  'go to OUTPUT/metrics.jsonl.';

export function grpoCommand(): Command {
  const cmd = new Command('grpo')
    .description('Group Relative Policy Optimization from prompts and rewards (arXiv:2402.03300; TRL 1.13 GRPOTrainer).\n' +
      'Samples num_generations completions per prompt, scores them, and pushes up those above their group\'s mean.\n' +
      'Minimal use: tsdpo grpo --model DIR --data PROMPTS --reward_funcs sentiment --output DIR')
    .addHelpText('after', AFTER);
  addOptions(cmd, GRPO_OPTIONS);
  cmd.action(async () => {
    const r = await runGrpo(resolveOptions(cmd, GRPO_OPTIONS));
    if (r.stopped) process.exitCode = 2;
    else process.stderr.write(`done: ${r.steps} steps; model in ${r.output}\n`);
  });
  return cmd;
}

export function rlooCommand(): Command {
  const cmd = new Command('rloo')
    .description('REINFORCE Leave-One-Out from prompts and rewards (arXiv:2402.14740; TRL 1.13 RLOOTrainer).\n' +
      'Each completion\'s baseline is the mean reward of its prompt\'s other completions; the KL to the reference is\n' +
      'folded into the reward.\n' +
      'Minimal use: tsdpo rloo --model DIR --data PROMPTS --reward_funcs sentiment --output DIR')
    .addHelpText('after', AFTER);
  addOptions(cmd, RLOO_OPTIONS);
  cmd.action(async () => {
    const r = await runRloo(resolveOptions(cmd, RLOO_OPTIONS));
    if (r.stopped) process.exitCode = 2;
    else process.stderr.write(`done: ${r.steps} steps; model in ${r.output}\n`);
  });
  return cmd;
}
