// The `tsdpo` command line: one subcommand per file in this folder.
import { Command } from 'commander';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('tsdpo')
    .description('Direct Preference Optimization for language models, in TypeScript.');
  await program.parseAsync(argv);
}
