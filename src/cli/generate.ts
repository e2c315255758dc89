// `tsdpo generate`: continue prompts with a model (greedy or sampled), with a KV cache; one JSON line per prompt.
import { Command } from 'commander';
import { generate } from '../api/infer.js';
import { initEngine } from '../engine.js';
import { GENERATE_OPTIONS } from '../eval/options.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { addOptions, resolveOptions } from './options.js';

export function generateCommand(): Command {
  const cmd = new Command('generate').description(
    'Generate continuations of prompts; prints one JSON line per prompt.',
  );
  addOptions(cmd, GENERATE_OPTIONS);
  return cmd.action(async () => {
    const o = resolveOptions(cmd, GENERATE_OPTIONS);
    await initEngine({ device: o.device, log: (l) => process.stderr.write(`${l}\n`) });
    const model = loadModel(o.model);
    if (o.adapter) loadAdapter(model, o.adapter);
    for (const g of await generate(model, loadTokenizer(o.model), o.prompt, o))
      process.stdout.write(`${JSON.stringify(g)}\n`);
  });
}
