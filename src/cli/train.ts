// `tsdpo dpo` and `tsdpo sft`: flags (TRL names) from the option tables, then the run.
import { Command } from 'commander';
import { DPO_SPECS, SFT_SPECS } from '../train/config.js';
import { runTraining } from '../api/run.js';
import { addOptions, resolveOptions } from './options.js';

export { DPO_SPECS, SFT_SPECS };

export function dpoCommand(): Command {
  const cmd = new Command('dpo')
    .description(
      'Direct Preference Optimization of a causal LM on (prompt, chosen, rejected) data.\n' +
        'Minimal use: tsdpo dpo --model DIR --data FILE --output DIR',
    )
    .addHelpText(
      'after',
      '\nData: JSONL / JSON / Parquet, or a folder with train/test files; standard, conversational,\n' +
        'implicit-prompt and Anthropic-HH formats (docs/data.md). Metrics go to OUTPUT/metrics.jsonl.',
    );
  addOptions(cmd, DPO_SPECS);
  cmd.action(async () => {
    const cfg = resolveOptions(cmd, DPO_SPECS);
    const r = await runTraining('dpo', cfg, { terminal: true });
    if (r.stopped) process.exitCode = 2;
    else process.stderr.write(`done: ${r.steps} steps; model in ${r.output}\n`);
  });
  return cmd;
}

export function sftCommand(): Command {
  const cmd = new Command('sft').description(
    'Supervised fine-tuning (cross-entropy on completions) — how a DPO starting model is made.\n' +
      'Minimal use: tsdpo sft --model DIR --data FILE --output DIR',
  );
  addOptions(cmd, SFT_SPECS);
  cmd.action(async () => {
    const cfg = resolveOptions(cmd, SFT_SPECS);
    const r = await runTraining('sft', cfg, { terminal: true });
    if (r.stopped) process.exitCode = 2;
    else process.stderr.write(`done: ${r.steps} steps; model in ${r.output}\n`);
  });
  return cmd;
}
