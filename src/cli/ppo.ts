// `tsdpo ppo`: flags (TRL 0.28 PPOConfig names) from the option tables, then the run.
import { Command } from 'commander';
import { PPO_SPECS, type PpoConfig } from '../rl/config.js';
import { runPpo } from '../rl/run.js';
import { COMMON_OPTIONS, defaultsOf } from '../train/config.js';
import { loadReward, readPrompts } from '../api/prompts.js';
import { addOptions, resolveOptions } from './options.js';

export function ppoCommand(): Command {
  const cmd = new Command('ppo')
    .description(
      "Proximal Policy Optimization against a reward (the RLHF pipeline DPO replaces), as TRL 0.28's PPOTrainer.\n" +
        'Minimal use: tsdpo ppo --model DIR --data PROMPTS --reward RM_DIR|sentiment|MODULE --output DIR',
    )
    .addHelpText(
      'after',
      '\nPer update: sample a batch of responses, score them (a reward model at EOS, or a function of the text), ' +
        'KL-penalise per token against the reference, GAE advantages, then num_ppo_epochs clipped policy + value updates.\n' +
        'Metrics (objective/*, policy/*, loss/*, val/*) go to OUTPUT/metrics.jsonl, one line per update;\n' +
        'checkpoints (policy, critic, optimizer, sampling generator) to OUTPUT/checkpoint-N every --save_steps updates (--resume continues).',
    );
  addOptions(cmd, PPO_SPECS);
  cmd.action(async () => {
    const cfg = { ...defaultsOf(COMMON_OPTIONS), ...resolveOptions(cmd, PPO_SPECS) } as PpoConfig;
    const r = await runPpo(cfg, {
      readPrompts: (tok, maxNew, maxPos) => readPrompts(cfg.dataset, cfg.prompt_field, tok, cfg.chat, maxNew, maxPos),
      rewardFunction: (spec) => loadReward(spec),
    });
    process.stderr.write(`done: ${r.updates} updates; model in ${r.output}\n`);
  });
  return cmd;
}
