// `tsdpo kto`: flags (TRL 1.13 KTOConfig names) from the option tables, then the run.
import { Command } from 'commander';
import { KTO_SPECS } from '../train/kto.js';
import { runTraining } from '../api/run.js';
import { addOptions, resolveOptions } from './options.js';

export function ktoCommand(): Command {
  const cmd = new Command('kto')
    .description(
      'Kahneman-Tversky Optimization (arXiv:2402.01306) of a ' +
        'causal LM on unpaired (prompt, completion, label) data.\n' +
        'Minimal use: tsdpo kto --model DIR --data FILE --output DIR',
    )
    .addHelpText(
      'after',
      '\nData: JSONL / JSON / Parquet rows {prompt, completion, label} (label true = desirable, false =\n' +
        'undesirable), text or lists of {role, content}; preference rows {prompt?, chosen, rejected} are unpaired\n' +
        "as TRL 1.13 does. loss_type kto estimates its KL term from each micro-batch's prompts paired with the\n" +
        "other examples' completions: per_device_train_batch_size must be at least 2. Metrics go to\n" +
        "OUTPUT/metrics.jsonl with TRL 1.13's names (kl, rewards/chosen, logps/rejected, ...).",
    );
  addOptions(cmd, KTO_SPECS);
  cmd.action(async () => {
    const cfg = resolveOptions(cmd, KTO_SPECS);
    const r = await runTraining('kto', cfg, { terminal: true });
    if (r.stopped) process.exitCode = 2;
    else process.stderr.write(`done: ${r.steps} steps; model in ${r.output}\n`);
  });
  return cmd;
}
