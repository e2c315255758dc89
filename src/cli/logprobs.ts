// `tsdpo logprobs`: summed completion log-probs of sequences under a model (optionally with a
// LoRA adapter), one JSON line per input line, in order. For users, and to check parity with
// transformers from outside. On preference data (the files `tsdpo dpo` reads) it scores each pair's
// chosen and rejected completions, and against a reference their log-ratio margin.
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { tidyAsync } from '../core/index.js';
import { padIdFor } from '../data/collate.js';
import { loadPreferenceDataset } from '../data/pipeline.js';
import { encodeCompletion, encodePrompt } from '../data/tokenize.js';
import { initEngine, type DeviceName } from '../engine.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import type { CausalLM } from '../models/model.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { computeReferenceLogps } from '../train/dpo.js';
import { sequenceLogps } from '../train/logps.js';

interface Options {
  model: string;
  input: string;
  adapter?: string;
  reference?: string;
  device: DeviceName;
  batch_size: string;
}

interface Row {
  ids: number[];
  mask: number[];
}

/** One input line: {input_ids, completion_mask} or {prompt, completion} (EOS appended). */
export function parseRow(line: string, where: string, vocab: number, tok: () => TextTokenizer): Row {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object') throw new Error(`${where}: expected an object`);
  const o = v as Record<string, unknown>;
  if (Array.isArray(o.input_ids)) {
    const ids = o.input_ids, mask = o.completion_mask;
    if (!Array.isArray(mask)) throw new Error(`${where}: field completion_mask is missing (an array aligned with input_ids)`);
    if (mask.length !== ids.length) throw new Error(`${where}: completion_mask has ${mask.length} entries, input_ids ${ids.length}`);
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`${where}: input_ids[${i}] = ${JSON.stringify(id)} is not a token id in [0, ${vocab})`);
    });
    if (mask.some((m) => m !== 0 && m !== 1)) throw new Error(`${where}: completion_mask must hold 0 and 1`);
    return { ids: ids as number[], mask: mask as number[] };
  }
  if (typeof o.prompt === 'string' && typeof o.completion === 'string') {
    const t = tok();
    const p = encodePrompt(t, o.prompt), c = encodeCompletion(t, o.completion);
    return { ids: [...p, ...c], mask: [...p.map(() => 0), ...c.map(() => 1)] };
  }
  throw new Error(`${where}: expected fields input_ids + completion_mask, or prompt + completion (strings)`);
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
async function preferenceLogprobs(o: Options, model: CausalLM, tok: TextTokenizer, bs: number): Promise<void> {
  const data = await loadPreferenceDataset(o.input, tok);
  process.stderr.write(`${o.input}: ${data.report.rows} pairs (${data.report.format})\n`);
  const padId = padIdFor(tok);
  const policy = await computeReferenceLogps(model, false, data.examples, padId, bs);
  // The reference: --reference, else with --adapter the base model (adapter off), else none.
  const refModel = o.reference ? loadModel(o.reference) : null;
  const ref = refModel ? await computeReferenceLogps(refModel, true, data.examples, padId, bs)
    : o.adapter ? await computeReferenceLogps(model, true, data.examples, padId, bs) : null;
  data.examples.forEach((e, i) => {
    const [pc, pr] = policy[i];
    const line: Record<string, number> = { chosen_logp: pc, rejected_logp: pr, chosen_tokens: e.chosenIds.length, rejected_tokens: e.rejectedIds.length };
    if (ref) {
      const [rc, rr] = ref[i];
      Object.assign(line, { ref_chosen_logp: rc, ref_rejected_logp: rr, margin: (pc - rc) - (pr - rr) });
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  });
}

export function logprobsCommand(): Command {
  return new Command('logprobs')
    .description('Summed log-probs of completion tokens under a model, one JSON line per sequence or per pair.\n' +
      'Minimal use: tsdpo logprobs --model DIR --input FILE')
    .addHelpText('after', `
Input:
  JSON lines of sequences: {"input_ids": [...], "completion_mask": [...]} or {"prompt": "...", "completion": "..."}
    -> one {"logp", "tokens"} line per input line.
  Preference data, what tsdpo dpo reads (a file or folder of chosen / rejected rows, docs/data.md)
    -> one line per pair, tokenized as tsdpo dpo does (untruncated):
       {"chosen_logp", "rejected_logp", "chosen_tokens", "rejected_tokens"}; with --reference (or
       --adapter: the base model) also "ref_chosen_logp", "ref_rejected_logp" and
       "margin" = (chosen_logp - ref_chosen_logp) - (rejected_logp - ref_rejected_logp),
       the implicit reward margin without beta (TRL logs beta x margin as rewards/margins).`)
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--input <file>', 'JSONL sequences, or preference data (file or folder)')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder')
    .option('--reference <dir>', 'preference data: reference model folder for the margin (default with --adapter: the base model)')
    .addOption(new Option('--device <name>', 'cpu, webgpu or auto').choices(['auto', 'cpu', 'webgpu']).default('auto'))
    .option('--batch_size <n>', 'sequences (pairs) per forward pass', '8')
    .action(async (o: Options) => {
      await initEngine({ device: o.device, log: (l) => process.stderr.write(`${l}\n`) });
      const model = loadModel(o.model);
      if (o.adapter) loadAdapter(model, o.adapter);
      let tok: TextTokenizer | null = null;
      const tokenizer = (): TextTokenizer => (tok ??= loadTokenizer(o.model));
      const bs = Math.max(1, Number(o.batch_size) || 8);
      if (isPreferenceInput(o.input)) return preferenceLogprobs(o, model, tokenizer(), bs);
      if (o.reference) throw new Error('--reference applies to preference data (chosen / rejected rows)');
      let pending: Row[] = [];
      const flush = async (): Promise<void> => {
        if (pending.length === 0) return;
        const T = Math.max(...pending.map((r) => r.ids.length));
        const R = pending.length;
        const ids = new Int32Array(R * T), att = new Int32Array(R * T), comp = new Float32Array(R * T);
        pending.forEach((r, i) => r.ids.forEach((id, t) => { ids[i * T + t] = id; att[i * T + t] = 1; comp[i * T + t] = r.mask[t]; }));
        const res = await tidyAsync(async () => {
          const l = sequenceLogps(model, { rows: R, T, inputIds: ids, attentionMask: att, completionMask: comp }, { headOnCompletion: true });
          return { seq: await l.seq.toArray(), tokens: l.tokens };
        });
        for (let i = 0; i < R; i++) process.stdout.write(`${JSON.stringify({ logp: res.seq[i], tokens: res.tokens[i] })}\n`);
        pending = [];
      };
      const lines = createInterface({ input: createReadStream(o.input), crlfDelay: Infinity });
      let n = 0;
      for await (const line of lines) {
        n++;
        if (line.trim() === '') continue;
        pending.push(parseRow(line, `${o.input}:${n}`, model.vocabSize, tokenizer));
        if (pending.length >= bs) await flush();
      }
      await flush();
    });
}
