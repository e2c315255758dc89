// Docs are tests: every `npx tsdpo` command line shown in README.md and docs/*.md runs here, as
// written, so that a documented command cannot break or drift silently.
//
// The rule, kept small on purpose:
// - Commands: in each ```sh block, every line (or `&&` part of a line) that starts with `npx tsdpo`,
//   after removing a trailing `# comment`. Other lines (npm ci, npm test, npm run bench:*, scripts/*)
//   are not tsdpo commands and are not run here.
// - Skipped (SKIPPED below, each with its reason): the full demo and the demo's pretraining, which take
//   minutes; their pipelines have their own tests. A command that needs a GPU would be listed there too.
// - How a line runs: `npx tsdpo` is `node bin/tsdpo.js`; commands that take --device get `--device cpu`
//   appended (the results then do not depend on the machine's GPU); nothing else is changed, so step
//   counts are those the docs show (the defaults: 3 epochs over the tiny files below).
// - Where: one fresh folder per document, commands in document order (a later line may use an
//   earlier line's output). The folder holds the files the docs name: model folders made from the
//   demo model (makeFixtures), small data the test writes, and every ```jsonl block of the document whose
//   preceding line is "`NAME`..." (written as NAME, replacing the fixture of that name).
// - Outputs: the README's "First hour" table lists files (`runs/...`) that must exist afterwards.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { ROOT, tempDir } from '../helpers/assets.js';
import { DEMO_MODEL, runCli, TOY_CHAT_TEMPLATE } from '../helpers/cli.js';

const SKIPPED: Record<string, string> = {
  'npx tsdpo demo': 'the full demo takes minutes; test/demo/demo.test.ts runs its pipeline with tiny settings',
  'npx tsdpo pretrain':
    'about 30 minutes of pretraining; test/demo/demo.test.ts checks the committed checkpoint against these defaults',
  'npx tsdpo studio --model assets/demo-model --prompts prompts.txt --db labels.db':
    'a server that runs until stopped; test/studio/*.test.ts start it and drive it in Chromium',
};
const DEVICE_COMMANDS = new Set(['dpo', 'sft', 'kto', 'reward', 'ppo', 'grpo', 'rloo', 'logprobs', 'generate', 'eval']);

/** The `npx tsdpo` commands of a Markdown text, in order, and the ```jsonl files it defines. */
function documentedCommands(markdown: string): { commands: string[]; files: Map<string, string> } {
  const commands: string[] = [],
    files = new Map<string, string>();
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i].match(/^```(\w*)/);
    if (!fence) continue;
    let end = i + 1;
    while (end < lines.length && !lines[end].startsWith('```')) end++;
    const body = lines.slice(i + 1, end);
    if (fence[1] === 'sh') {
      for (const line of body) {
        for (const part of stripComment(line)
          .split('&&')
          .map((p) => p.trim()))
          if (part.startsWith('npx tsdpo')) commands.push(part);
      }
    } else if (fence[1] === 'jsonl') {
      const name = lines
        .slice(0, i)
        .reverse()
        .find((l) => l.trim() !== '')
        ?.match(/^`([^`]+)`/)?.[1];
      if (name) files.set(name, body.join('\n') + '\n');
    }
    i = end;
  }
  return { commands, files };
}

function stripComment(line: string): string {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '"') quoted = !quoted;
    else if (line[i] === '#' && !quoted && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trim();
  }
  return line.trim();
}

/** Shell words: spaces separate, double quotes group (all the docs use). */
function words(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

const SUBJECTS = [
  'The movie',
  'This film',
  'The plot',
  'The acting',
  'The ending',
  'The story',
  'The cast',
  'The score',
];
const PAIRS = Array.from({ length: 16 }, (_, i) => ({
  prompt: `${SUBJECTS[i % 8]} was`,
  chosen: i % 2 ? ' great and fun.' : ' wonderful and moving.',
  rejected: i % 2 ? ' dull and bad.' : ' awful and boring.',
}));
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** The files the docs name, made in dir: models from the demo model, tiny data, a killed run. */
function makeFixtures(dir: string): void {
  for (const name of ['my-sft-model', 'base', 'chat-model']) cpSync(DEMO_MODEL, join(dir, name), { recursive: true });
  writeFileSync(join(dir, 'chat-model', 'chat_template.jinja'), TOY_CHAT_TEMPLATE);
  writeFileSync(join(dir, 'prefs.jsonl'), jsonl(PAIRS));
  writeFileSync(join(dir, 'pairs.jsonl'), jsonl(PAIRS));
  writeFileSync(join(dir, 'sft.jsonl'), jsonl(PAIRS.map((p) => ({ prompt: p.prompt, completion: p.chosen }))));
  writeFileSync(
    join(dir, 'prompts.txt'),
    `${SUBJECTS.slice(0, 4)
      .map((s) => `${s} was`)
      .join('\n')}\n`,
  );
  writeFileSync(join(dir, 'judge.mjs'), 'export default (prompt, completion) => completion.split(" ").length;\n');
  const columns = ['prompt', 'chosen', 'rejected'] as const;
  writeFileSync(
    join(dir, 'prefs.parquet'),
    new Uint8Array(
      parquetWriteBuffer({
        columnData: columns.map((name) => ({ name, data: PAIRS.map((p) => p[name]) as never })),
      }),
    ),
  );
  mkdirSync(join(dir, 'my-dataset'));
  writeFileSync(join(dir, 'my-dataset', 'train.jsonl'), jsonl(PAIRS.slice(0, 12)));
  writeFileSync(join(dir, 'my-dataset', 'test.jsonl'), jsonl(PAIRS.slice(12)));
  // run.yaml and a run "killed" after its first checkpoint, for `--config run.yaml --resume`.
  writeFileSync(
    join(dir, 'run.yaml'),
    'model_name_or_path: ./my-sft-model\ndataset: prefs.jsonl\noutput_dir: runs/resumable\n' +
      'max_steps: 4\nsave_steps: 2\nper_device_train_batch_size: 4\ndevice: cpu\n',
  );
  const killed = runCli(['dpo', '--config', 'run.yaml', '--max_steps', '2'], dir);
  assert.equal(killed.status, 0, killed.stderr);
}

/** Paths in the first column of the table in the README's "First hour" section. */
function firstHourOutputs(readme: string): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith('First hour')) ?? '';
  return [...section.matchAll(/^\| `(runs\/[^`]+)`/gm)].map((m) => m[1]);
}

const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

for (const doc of DOCS) {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const { commands, files } = documentedCommands(text);
  if (commands.every((c) => c in SKIPPED)) continue;
  test(`${doc}: every npx tsdpo command runs (${commands.length})`, () => {
    const dir = tempDir('tsdpo-docs-');
    makeFixtures(dir);
    for (const [name, content] of files) writeFileSync(join(dir, name), content);
    for (const command of commands) {
      if (command in SKIPPED) continue;
      const args = words(command).slice(2); // drop "npx tsdpo"
      if (DEVICE_COMMANDS.has(args[0]) && !args.includes('--help')) args.push('--device', 'cpu');
      const r = runCli(args, dir);
      assert.equal(r.status, 0, `${doc}: \`${command}\` failed in ${dir}:\n${r.stderr.slice(-2000)}`);
    }
    if (doc === 'README.md') {
      const outputs = firstHourOutputs(text);
      assert.ok(outputs.length >= 5, `the First hour table lists ${outputs.length} files`);
      for (const f of outputs) assert.ok(existsSync(join(dir, f)), `README's First hour promises ${f}`);
    }
    rmSync(dir, { recursive: true, force: true }); // kept when a command fails, for a look
  });
}

test('the skip list names only commands that the docs show', () => {
  const all = DOCS.flatMap((d) => documentedCommands(readFileSync(join(ROOT, d), 'utf8')).commands);
  for (const c of Object.keys(SKIPPED))
    assert.ok(all.includes(c), `SKIPPED has '${c}', which no document shows any more`);
  assert.ok(all.length >= 25, `${all.length} documented commands found`);
});
