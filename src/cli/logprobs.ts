// `tsdpo logprobs`: summed completion log-probs of sequences under a model (optionally with a
// LoRA adapter), one JSON line per input line, in order. For users, and to check parity with
// transformers from outside. On preference data (the files `tsdpo dpo` reads) it scores each pair's
// chosen and rejected completions, and against a reference their log-ratio margin.
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { logprobs, pairLogprobsOf, sequenceIds, type SequenceRow } from '../api/infer.js';
import { padIdFor } from '../data/collate.js';
import { loadPreferenceDataset } from '../data/load.js';
import { initEngine } from '../engine.js';
import { LOGPROBS_OPTIONS, type LogprobsConfig } from '../eval/options.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import type { CausalLM } from '../models/model.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { addOptions, resolveOptions } from './options.js';

/**
 * One input line: {input_ids, completion_mask} or {prompt, completion} (EOS appended); errors name `where` (file:line).
 */
export function parseRow(
  line: string,
  where: string,
  vocab: number,
  tok: () => TextTokenizer,
): { ids: number[]; mask: number[] } {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
  }
  return sequenceIds(v, where, vocab, tok);
}

/** The first non-blank line of a text file, read a block at a time. */
function firstLine(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 16);
    let text = '';
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) {
      text += buf.toString('utf8', 0, n);
      const lines = text.split('\n');
      const hit = lines.slice(0, -1).find((l) => l.trim() !== '');
      if (hit !== undefined) return hit;
      text = lines.at(-1)!;
    }
    return text.trim() !== '' ? text : undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Preference data (chosen / rejected rows, as `tsdpo dpo` reads them) rather than sequences: a folder,
 * a .json or .parquet file, or JSON lines (any other name) whose first row has a `chosen` field.
 */
export function isPreferenceInput(path: string): boolean {
  if (statSync(path).isDirectory() || /\.(json|parquet)$/.test(path)) return true;
  try {
    const row = JSON.parse(firstLine(path) ?? 'null') as unknown;
    return row !== null && typeof row === 'object' && 'chosen' in row;
  } catch {
    return false; // the sequence reader names the bad line
  }
}

/** One line per pair: policy log-probs, and with a reference their log-ratio margin (beta-free). */
async function preferenceLogprobs(o: LogprobsConfig, model: CausalLM, tok: TextTokenizer): Promise<void> {
  const data = await loadPreferenceDataset(o.input, tok);
  process.stderr.write(`${o.input}: ${data.report.rows} pairs (${data.report.format})\n`);
  // The reference: --reference, else with --adapter the base model (adapter off), else none.
  const reference = o.reference ? loadModel(o.reference) : undefined;
  for (const line of await pairLogprobsOf(model, data.examples, padIdFor(tok), {
    reference,
    adapterOff: !!o.adapter,
    batchSize: o.batch_size,
  })) {
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
}

export function logprobsCommand(): Command {
  const cmd = new Command('logprobs')
    .description(
      'Summed log-probs of completion tokens under a model, one JSON line per sequence or per pair.\n' +
        'Minimal use: tsdpo logprobs --model DIR --input FILE',
    )
    .addHelpText(
      'after',
      `
Input:
  JSON lines of sequences: {"input_ids": [...], "completion_mask": [...]} or {"prompt": "...", "completion": "..."}
    -> one {"logp", "tokens"} line per input line.
  Preference data, what tsdpo dpo reads (a file or folder of chosen / rejected rows, docs/data.md)
    -> one line per pair, tokenized as tsdpo dpo does (untruncated):
       {"chosen_logp", "rejected_logp", "chosen_tokens", "rejected_tokens"}; with --reference (or
       --adapter: the base model) also "ref_chosen_logp", "ref_rejected_logp" and
       "margin" = (chosen_logp - ref_chosen_logp) - (rejected_logp - ref_rejected_logp),
       the implicit reward margin without beta (TRL logs beta x margin as rewards/margins).`,
    );
  addOptions(cmd, LOGPROBS_OPTIONS);
  return cmd.action(async () => {
    const o = resolveOptions(cmd, LOGPROBS_OPTIONS);
    await initEngine({ device: o.device, log: (l) => process.stderr.write(`${l}\n`) });
    const model = loadModel(o.model);
    if (o.adapter) loadAdapter(model, o.adapter);
    let tok: TextTokenizer | null = null;
    const tokenizer = (): TextTokenizer => (tok ??= loadTokenizer(o.model));
    if (isPreferenceInput(o.input)) return preferenceLogprobs(o, model, tokenizer());
    if (o.reference) throw new Error('--reference applies to preference data (chosen / rejected rows)');
    let pending: SequenceRow[] = [];
    const flush = async (): Promise<void> => {
      for (const r of await logprobs(model, pending, { batchSize: pending.length }))
        process.stdout.write(`${JSON.stringify(r)}\n`);
      pending = [];
    };
    const lines = createInterface({ input: createReadStream(o.input), crlfDelay: Infinity });
    let n = 0;
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      const r = parseRow(line, `${o.input}:${n}`, model.vocabSize, tokenizer);
      pending.push({ input_ids: r.ids, completion_mask: r.mask });
      if (pending.length >= o.batch_size) await flush();
    }
    if (pending.length > 0) await flush();
  });
}
