// `tsdpo logprobs`: summed completion log-probs of sequences under a model (optionally with a
// LoRA adapter), one JSON line per input line, in order. For users, and to check parity with
// transformers from outside.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { tidyAsync } from '../core/index.js';
import { encodeCompletion, encodePrompt } from '../data/tokenize.js';
import { initEngine, type DeviceName } from '../engine.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { sequenceLogps } from '../train/logps.js';

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

export function logprobsCommand(): Command {
  return new Command('logprobs')
    .description('Summed log-probs of completion tokens: one {"logp", "tokens"} JSON line per input line.\n' +
      'Input lines: {"input_ids": [...], "completion_mask": [...]} or {"prompt": "...", "completion": "..."}.')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--input <file>', 'JSONL input')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder')
    .addOption(new Option('--device <name>', 'cpu, webgpu or auto').choices(['auto', 'cpu', 'webgpu']).default('auto'))
    .option('--batch_size <n>', 'sequences per forward pass', '8')
    .action(async (o: { model: string; input: string; adapter?: string; device: DeviceName; batch_size: string }) => {
      await initEngine({ device: o.device, log: (l) => process.stderr.write(`${l}\n`) });
      const model = loadModel(o.model);
      if (o.adapter) loadAdapter(model, o.adapter);
      let tok: TextTokenizer | null = null;
      const tokenizer = (): TextTokenizer => (tok ??= loadTokenizer(o.model));
      const bs = Math.max(1, Number(o.batch_size) || 8);
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
