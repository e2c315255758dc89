// `tsdpo reward`: train a reward model (TRL 1.13's RewardTrainer) from flags with RewardConfig's names.
import { Command } from 'commander';
import { runTraining } from '../api/run.js';
import { REWARD_SPECS } from '../train/reward-config.js';
import { addOptions, resolveOptions } from './options.js';

export function rewardCommand(): Command {
  const cmd = new Command('reward')
    .description(
      "Train a reward model (TRL 1.13's RewardTrainer): a one-label sequence classifier scores each pair's " +
        'chosen and rejected sequence, trained with the Bradley-Terry ' +
        'loss -log sigmoid(r_chosen - r_rejected - margin).\n' +
        'Minimal use: tsdpo reward --model DIR --data FILE --output DIR',
    )
    .addHelpText(
      'after',
      '\nModel: a *ForSequenceClassification folder continues; a causal LM folder gets a new seeded score\n' +
        'head (its lm_head is dropped). Data: preference rows, standard or conversational, with or without a\n' +
        'prompt, optionally a numeric margin column; EOS is appended to text rows; rows longer than max_length\n' +
        'are dropped. Metrics (loss, accuracy, margin, min/mean/max_reward, ...) go to OUTPUT/metrics.jsonl; the\n' +
        'model (or, with --lora, a PEFT adapter whose modules_to_save holds the score head) to OUTPUT, loadable by\n' +
        'transformers and by `tsdpo eval --reward OUTPUT`.',
    );
  addOptions(cmd, REWARD_SPECS);
  cmd.action(async () => {
    const r = await runTraining('reward', resolveOptions(cmd, REWARD_SPECS), { terminal: true });
    if (r.stopped) process.exitCode = 2;
    else process.stderr.write(`done: ${r.steps} steps; reward model in ${r.output}\n`);
  });
  return cmd;
}
