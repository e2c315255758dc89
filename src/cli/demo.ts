// `tsdpo demo`: the DPO paper's reward-vs-KL experiment in miniature, offline (src/demo/demo.ts).
import { Command } from 'commander';
import { runDemo, summaryJson } from '../demo/demo.js';
import { DEMO_OPTIONS, demoSpecs } from '../demo/options.js';
import { resultText } from '../demo/report.js';
import { addOptions, resolveOptions } from './options.js';

export function demoCommand(): Command {
  const cmd = new Command('demo')
    .description(
      "The DPO paper's controlled-sentiment experiment (arXiv:2305.18290, Fig. 2 and 3) in miniature, offline: " +
        'sample review completions from the committed small model, ' +
        'pair them by a sentiment reward, train DPO at several ' +
        "betas and the paper's baselines (Preferred-FT, Unlikelihood, a " +
        'reward model with PPO, PPO-GT on the true reward, best-of-N), ' +
        'and chart reward against KL and win rates by temperature and over training. ' +
        'Several minutes on two cores (--quick: one strength per method and smaller samples, a few times faster).',
    )
    .addHelpText(
      'after',
      '\nWrites OUTPUT/report.html (self-contained), frontier.svg, winrate-temperature.svg, winrate-training.svg, ' +
        'summary.json, pairs.jsonl and reward-model/.',
    );
  addOptions(cmd, DEMO_OPTIONS);
  cmd.action(async () => {
    const quick = cmd.opts().quick !== undefined && cmd.opts().quick !== 'false' && cmd.opts().quick !== false;
    const cfg = resolveOptions(cmd, demoSpecs(quick) as typeof DEMO_OPTIONS);
    const r = await runDemo(cfg);
    // The table goes to stdout, unless stdout is reserved for the --json line.
    (cfg.json ? process.stderr : process.stdout).write(`${resultText(r)}\n`);
    if (cfg.json) process.stdout.write(`${JSON.stringify(summaryJson(r))}\n`);
  });
  return cmd;
}
