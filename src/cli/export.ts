// `tsdpo export --to trl`: a training config as a folder that TRL 1.13 + accelerate / DeepSpeed runs.
import { Command, Option } from 'commander';
import { COMMON_OPTIONS, defaultsOf, type OptionSpec } from '../train/config.js';
import { readConfigFile } from '../train/config-file.js';
import { KTO_OPTIONS } from '../train/kto.js';
import { REWARD_SPECS } from '../train/reward-config.js';
import { GRPO_OPTIONS, RLOO_OPTIONS } from '../rl/grpo-config.js';
import { EXPORT_TRAINERS, exportToTrl, notCarriedHelp, type ExportTrainer } from '../export/trl.js';
import { DPO_SPECS, SFT_SPECS } from './train.js';

/** The option table of each command an exported config may be for. */
const SPECS: Record<ExportTrainer, Record<string, OptionSpec>> = {
  dpo: DPO_SPECS,
  sft: SFT_SPECS,
  reward: REWARD_SPECS,
  kto: { ...COMMON_OPTIONS, ...KTO_OPTIONS },
  grpo: GRPO_OPTIONS,
  rloo: RLOO_OPTIONS,
};

export function exportCommand(): Command {
  const cmd = new Command('export')
    .description(
      'Write a tsdpo training config as a TRL 1.13 + accelerate run (for GPUs and clusters).\n' +
        'Minimal use: tsdpo export --to trl --config run.yaml --output DIR',
    )
    .addOption(new Option('--to <target>', 'what to export to').choices(['trl']).default('trl'))
    .addOption(
      new Option('--trainer <name>', 'the tsdpo command the config is for')
        .choices([...EXPORT_TRAINERS])
        .default('dpo'),
    )
    .requiredOption(
      '--config <file>',
      'YAML or JSON config of `tsdpo dpo` / `sft` / `reward` / `kto` / `grpo` / `rloo` (their option names)',
    )
    .requiredOption('--output <dir>', 'the folder to write (config.json, data/, accelerate/, launch.sh, README.md)')
    .option('--num_processes <n>', 'processes of accelerate/single_node.yaml (launch.sh: NUM_PROCESSES overrides)', '2')
    .addHelpText(
      'after',
      `\nThe folder runs with \`bash DIR/launch.sh\` (env NUM_PROCESSES, USE_CPU=1, ACCELERATE_CONFIG) and writes\n` +
        `TRL's log_history to DIR/output/log_history.jsonl; \`bash ` +
        `DIR/launch.sh --resume_from_checkpoint CKPT\` continues a\n` +
        `checkpoint of TRL or of tsdpo. Options not carried, and why:\n${notCarriedHelp()}`,
    );
  cmd.action(async (o: { trainer: ExportTrainer; config: string; output: string; num_processes: string }) => {
    const specs = SPECS[o.trainer];
    const n = Number(o.num_processes);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--num_processes must be a whole number >= 1, got '${o.num_processes}'`);
    const cfg = { ...defaultsOf(specs), ...readConfigFile(o.config, specs) };
    const r = await exportToTrl(o.trainer, specs, cfg, o.output, n);
    process.stderr.write(
      `wrote ${r.dir}: ${Object.keys(r.carried).length} options carried; run: bash ${r.dir}/launch.sh\n`,
    );
  });
  return cmd;
}
