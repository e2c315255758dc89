// `tsdpo studio`: the local web app that collects preferences, trains DPO on them and compares the
// result (src/studio/); `tsdpo studio export` / `import` move its labels to and from TRL-format files.
import { basename, dirname, join, parse } from 'node:path';
import { Command, Option } from 'commander';
import { hasChatTemplate } from '../studio/engine.js';
import { startStudio } from '../studio/server/server.js';
import { readPreferenceFile, writeRows } from '../studio/store/export.js';
import { Store } from '../studio/store/store.js';

export function studioCommand(): Command {
  const cmd = new Command('studio').description(
    'Collect preferences in the browser, train DPO on them and compare, in one local web app.\n' +
      'Minimal use: tsdpo studio --model DIR --prompts FILE --db FILE (then open the URL it prints;\n' +
      'its options: tsdpo studio serve --help)',
  );
  // `serve` is the default subcommand, so that `tsdpo studio --model ...` serves and the options of
  // `export` / `import` (--db too) stay theirs.
  const serve = cmd
    .command('serve', { isDefault: true })
    .description('Serve the studio (the default: `tsdpo studio --model ...` is `tsdpo studio serve --model ...`)')
    .option('--model <dir>', 'Hugging Face model folder that writes the completions (the policy to train)')
    .option('--reference <dir>', 'a second model: each pair has one completion from --model and one from it')
    .option('--prompts <file>', 'prompts, one a line (added to the database; more can be typed in the page)')
    .option('--db <file>', 'the SQLite database of prompts, pairs and labels (created if absent)')
    .option('--port <n>', 'port (0: any free port)', '7860')
    .option('--host <host>', 'address to listen on (only this machine by default)', '127.0.0.1')
    .option('--runs <dir>', 'where training runs go (default: DB-NAME-runs/ beside the database)')
    .option('--hold_out <n>', 'every n-th prompt of --prompts is held out for the comparison (0: none)', '5')
    .option('--max_new_tokens <n>', 'tokens per sampled completion', '32')
    .option('--guidelines <file>', 'labelling guidelines shown beside the pair (text)')
    .addOption(
      new Option('--device <name>', 'cpu, webgpu or auto (sampling and server-side training)')
        .choices(['auto', 'cpu', 'webgpu'])
        .default('cpu'),
    )
    .action(async (o) => {
      if (!o.model) serve.error('error: --model <dir> is required');
      if (!o.db) serve.error('error: --db <file> is required');
      const { readFileSync } = await import('node:fs');
      const p = parse(o.db);
      const studio = await startStudio({
        model: o.model,
        reference: o.reference,
        db: o.db,
        prompts: o.prompts,
        port: Number(o.port),
        host: o.host,
        runs: o.runs ?? join(dirname(o.db), `${p.name}-runs`),
        device: o.device,
        maxNewTokens: Number(o.max_new_tokens),
        holdOutEvery: Number(o.hold_out),
        guidelines: o.guidelines ? readFileSync(o.guidelines, 'utf8') : undefined,
      });
      process.stdout.write(`${studio.url}\n`);
      const stop = (): void => {
        void studio.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  cmd
    .command('export')
    .description('Write the labeled pairs as TRL rows (prompt, chosen, rejected): .jsonl or .parquet')
    .requiredOption('--db <file>', 'the studio database')
    .requiredOption('--output <file>', 'FILE.jsonl or FILE.parquet')
    .option('--model <dir>', 'the model: conversational rows when it has a chat template')
    .option('--ties', 'also write ties (with "verdict": "tie")', false)
    .option('--both_bad', 'also write both-bad pairs (with "verdict": "both_bad")', false)
    .action((o) => {
      const store = new Store(o.db);
      try {
        const rows = store.exportRows({ ties: o.ties, bothBad: o.both_bad });
        writeRows(o.output, rows, o.model ? hasChatTemplate(o.model) : false);
        process.stderr.write(`${rows.length} rows written to ${o.output}\n`);
      } finally {
        store.close();
      }
    });
  cmd
    .command('import')
    .description(
      'Add the pairs of a preference file (prompt, chosen, rejected; .jsonl / .json / .parquet) as labeled pairs',
    )
    .requiredOption('--db <file>', 'the studio database')
    .requiredOption('--input <file>', 'the preference file')
    .option('--labeler <name>', 'whose labels they become (default: import:FILE-NAME)')
    .action(async (o) => {
      const rows = await readPreferenceFile(o.input);
      const store = new Store(o.db);
      try {
        const n = store.importRows(rows, `import:${basename(o.input)}`, o.labeler ?? `import:${basename(o.input)}`);
        process.stderr.write(`${n} pairs imported from ${o.input}\n`);
      } finally {
        store.close();
      }
    });
  return cmd;
}
