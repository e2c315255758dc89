// `tsdpo merge-shards`: the shard files of one `tsdpo eval --shard i/n` run merged into the whole
// run's result (printed as `tsdpo eval` prints it) and, with --output, its samples file.
import { Command } from 'commander';
import { writeFileAtomic } from '../io/atomic.js';
import { formatResult, mergeEvalShards } from '../eval/shard.js';

export function mergeShardsCommand(): Command {
  return new Command('merge-shards')
    .description(
      'Merge the shard files of `tsdpo eval --shard i/n --output ' +
        'FILE` (parts 0/n .. n-1/n, e.g. from a SLURM job array) ' +
        'into the result of the whole run: the same numbers as one unsharded `tsdpo eval`.\n' +
        'Minimal use: tsdpo merge-shards eval-0.jsonl eval-1.jsonl',
    )
    .argument('<files...>', 'the shard files, one per part, in any order')
    .option('--output <file>', "write the whole run's samples (as `tsdpo eval --output`)")
    .option('--json', 'print one JSON line of results (per temperature) instead of the text summary', false)
    .addHelpText(
      'after',
      '\nReference log-prob shards (tsdpo dpo --precompute_ref_log_probs --shard i/n) need no merge command:\n' +
        'the next run without --shard merges them into its cache.',
    )
    .action((files: string[], o: { output?: string; json: boolean }) => {
      const m = mergeEvalShards(files);
      for (const r of m.results)
        process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : formatResult(r, String(m.settings.reward)));
      if (o.output) writeFileAtomic(o.output, m.samples.map((l) => `${JSON.stringify(l)}\n`).join(''));
    });
}
