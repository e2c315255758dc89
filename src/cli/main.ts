// The `tsdpo` command line: one subcommand per file in this folder.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { generateCommand } from './generate.js';
import { ktoCommand } from './kto.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { exportCommand } from './export.js';
import { logprobsCommand } from './logprobs.js';
import { mergeShardsCommand } from './merge-shards.js';
import { ppoCommand } from './ppo.js';
import { pretrainCommand } from './pretrain.js';
import { rewardCommand } from './reward.js';
import { grpoCommand, rlooCommand } from './rl.js';
import { studioCommand } from './studio.js';
import { dpoCommand, sftCommand } from './train.js';

/** package.json's version (dist/src/cli/main.js sits three folders below the package root). */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('tsdpo')
    .description('Direct Preference Optimization for language models, in TypeScript (arXiv:2305.18290).')
    .version(packageVersion(), '-V, --version', 'print the version of tsdpo')
    .showHelpAfterError()
    .addCommand(dpoCommand())
    .addCommand(sftCommand())
    .addCommand(ktoCommand())
    .addCommand(rewardCommand())
    .addCommand(ppoCommand())
    .addCommand(grpoCommand())
    .addCommand(rlooCommand())
    .addCommand(logprobsCommand())
    .addCommand(generateCommand())
    .addCommand(evalCommand())
    .addCommand(exportCommand())
    .addCommand(mergeShardsCommand())
    .addCommand(pretrainCommand())
    .addCommand(demoCommand())
    .addCommand(studioCommand());
  await program.parseAsync(argv);
}
