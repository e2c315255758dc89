// `tsdpo generate`: continue prompts with a model (greedy or sampled), with a KV cache.
import { Command, Option } from 'commander';
import { Rng } from '../core/random.js';
import { encodePrompt } from '../data/tokenize.js';
import { initEngine, type DeviceName } from '../engine.js';
import { generate } from '../eval/generate.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import { loadTokenizer } from '../tokenizer/load.js';

export function generateCommand(): Command {
  return new Command('generate')
    .description('Generate continuations of prompts; prints one JSON line per prompt.')
    .requiredOption('--model <dir>', 'Hugging Face model folder (with tokenizer files)')
    .requiredOption('--prompt <text...>', 'prompt(s)')
    .option('--adapter <dir>', 'PEFT LoRA adapter folder')
    .option('--max_new_tokens <n>', 'tokens to generate', '32')
    .option('--do_sample', 'sample instead of greedy decoding', false)
    .option('--temperature <t>', 'sampling temperature', '1')
    .option('--top_k <k>', 'keep the k most likely tokens (0 = off)', '0')
    .option('--top_p <p>', 'nucleus sampling mass (1 = off)', '1')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--chat', 'wrap each prompt in the chat template as a user message', false)
    .addOption(new Option('--device <name>', 'cpu, webgpu or auto').choices(['auto', 'cpu', 'webgpu']).default('auto'))
    .action(async (o) => {
      await initEngine({ device: o.device as DeviceName, log: (l) => process.stderr.write(`${l}\n`) });
      const model = loadModel(o.model);
      if (o.adapter) loadAdapter(model, o.adapter);
      const tok = loadTokenizer(o.model);
      const texts: string[] = o.prompt;
      const prompts = texts.map((p) => encodePrompt(tok, o.chat ? tok.applyChatTemplate([{ role: 'user', content: p }], { addGenerationPrompt: true }) : p));
      const out = await generate(model, prompts, {
        maxNewTokens: Number(o.max_new_tokens), doSample: Boolean(o.do_sample), temperature: Number(o.temperature),
        topK: Number(o.top_k), topP: Number(o.top_p), eosIds: tok.eosIds, padId: tok.padId ?? tok.eosId ?? 0, rng: new Rng(Number(o.seed)),
      });
      texts.forEach((p, i) => process.stdout.write(`${JSON.stringify({ prompt: p, completion: tok.decode(out.tokens[i], { skipSpecialTokens: true }), tokens: out.tokens[i] })}\n`));
    });
}
