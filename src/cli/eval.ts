// `tsdpo eval`: a trained policy against its reference (the model before training) on prompts,
// judged by a reward: mean reward of each, KL(policy || reference) on the policy's samples, and
// the policy's win rate against the reference's samples (the DPO paper's measures, Sec. 6).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import { DataError, fileKind, readRecordsFromFile, type Where } from '../data/index.js';
import { looksConversational, messagesField, renderPrompt, requireTemplate, textField } from '../data/messages.js';
import { encodePrompt } from '../data/tokenize.js';
import { initEngine, type DeviceName } from '../engine.js';
import { evaluatePolicy } from '../eval/evaluate.js';
import { evalResult, formatResult, parseShard, shardLines, shardRange, type SampleLine } from '../eval/shard.js';
import { reward as sentimentReward } from '../eval/reward.js';
import { loadRewardModel, rewardModelJudge } from '../eval/reward-model.js';
import type { EvalPrompt, RewardFn } from '../eval/sample.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { progress } from '../train/progress.js';

/**
 * Prompts from a file: .txt (one per non-empty line), or .jsonl / .json / .parquet rows whose
 * `field` is a string or a list of chat messages (rendered with the chat template, generation
 * prompt added). With `chat`, string prompts are wrapped as one user message. A prompt that
 * leaves no room for `maxNewTokens` within `maxPositions` (learned positions: GPT-2) is an error.
 */
export async function readPrompts(file: string, field: string, tok: TextTokenizer, chat: boolean,
  maxNewTokens = 0, maxPositions = Infinity): Promise<EvalPrompt[]> {
  const rows: { text: string; where: Where }[] = [];
  if (chat && !tok.hasChatTemplate) throw new Error(`--chat: the tokenizer of ${tok.source} has no chat template (add chat_template.jinja to the model folder)`);
  const asChat = (text: string, where: Where) => renderPrompt(tok, [{ role: 'user', content: text }], where, field);
  const isText = extname(file).toLowerCase() === '.txt';
  const fieldName = isText ? null : field; // what errors name
  if (isText) {
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const text = line.replace(/\r$/, '');
      const where = { file, line: i + 1 };
      if (text.trim() !== '') rows.push({ text: chat ? asChat(text, where) : text, where });
    });
  } else {
    if (fileKind(file) === null) throw new Error(`${file}: prompts must be a .txt, .jsonl, .json or .parquet file`);
    for (const r of await readRecordsFromFile(file)) {
      if (r.error !== undefined) throw new DataError(r.where, null, r.error);
      if (!r.value || typeof r.value !== 'object' || Array.isArray(r.value)) throw new DataError(r.where, null, 'expected an object');
      const row = r.value as Record<string, unknown>;
      const conversational = looksConversational(row[field]);
      if (conversational) requireTemplate(tok, r.where);
      const text = conversational
        ? renderPrompt(tok, messagesField(row, field, r.where), r.where, field)
        : chat ? asChat(textField(row, field, r.where), r.where) : textField(row, field, r.where);
      rows.push({ text, where: r.where });
    }
  }
  if (rows.length === 0) throw new Error(`${file}: no prompts`);
  return rows.map(({ text, where }) => {
    const ids = encodePrompt(tok, text);
    if (ids.length === 0) throw new DataError(where, fieldName, 'gives no tokens (the tokenizer adds no BOS to start from)');
    if (ids.length + maxNewTokens > maxPositions) {
      throw new DataError(where, fieldName, `the prompt has ${ids.length} tokens; with --max_new_tokens ${maxNewTokens} it needs ` +
        `${ids.length + maxNewTokens} positions, above the model's ${maxPositions} (n_positions): shorten it or lower --max_new_tokens`);
    }
    return { text, ids };
  });
}

/**
 * `sentiment` (the demo's AFINN reward of the completion), a reward model folder
 * (*ForSequenceClassification; `label` picks a classifier's label), or a module whose default (or
 * `reward`) export is the function.
 */
export async function loadReward(spec: string, label?: string): Promise<RewardFn> {
  if (spec === 'sentiment') return (_prompt, completion) => sentimentReward(completion);
  if (existsSync(spec) && statSync(spec).isDirectory()) return rewardModelJudge(loadRewardModel(spec), label);
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(resolve(spec)).href) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`--reward ${spec}: cannot load the module (${(e as Error).message}); give 'sentiment', a reward model folder or a .js/.mjs file`);
  }
  const fn = mod.default ?? mod.reward;
  if (typeof fn !== 'function') {
    throw new Error(`--reward ${spec}: the module exports no function (export default (prompt, completion) => number, or export function reward)`);
  }
  return fn as RewardFn;
}

interface EvalCliOptions {
  model: string; adapter?: string; reference?: string; prompts: string; prompt_field: string; reward: string; reward_label?: string;
  samples: string; max_new_tokens: string; temperature: string; seed: string; batch_size: string; chat: boolean;
  output?: string; json: boolean; device: DeviceName; shard?: string;
}

const positiveInt = (name: string, v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number >= 1, got '${v}'`);
  return n;
};

export function evalCommand(): Command {
  return new Command('eval')
    .description('Evaluate a policy against its reference on prompts, judged by a reward: mean reward of each, ' +
      'KL(policy || reference) estimated on the policy\'s samples, and the policy\'s win rate against the reference\'s ' +
      'samples (ties 1/2). Both models sample with the same random numbers.\n' +
      'Minimal use: tsdpo eval --model DIR --reference DIR --prompts FILE [--reward sentiment|MODULE|DIR]')
    .requiredOption('--model <dir>', 'the policy: a Hugging Face model folder (with tokenizer files)')
    .option('--adapter <dir>', 'PEFT LoRA adapter on --model (then the reference defaults to --model without it)')
    .option('--reference <dir>', 'the reference: the model before training (required without --adapter)')
    .requiredOption('--prompts <file>', '.txt (one prompt per line), or .jsonl / .json / .parquet rows')
    .option('--prompt_field <name>', 'field of the prompt in .jsonl / .json / .parquet rows (text or chat messages)', 'prompt')
    .option('--reward <spec>', "'sentiment' (sigmoid of the AFINN score / 2 of the completion), a reward model folder " +
      '(*ForSequenceClassification: its score of prompt + completion; what `tsdpo reward` saves, a LoRA adapter included), ' +
      'or a .mjs/.js module exporting ' +
      '(prompt, completion) => number (default export or `reward`)', 'sentiment')
    .option('--reward_label <label>', "a reward model with several labels (a classifier): the label (name or index) whose probability is the reward")
    .option('--samples <n>', 'completions per prompt from each model', '4')
    .option('--max_new_tokens <n>', 'tokens per completion', '32')
    .option('--temperature <t>', 'sampling temperature, or several (0.25,0.5,1: win rate against temperature, the paper\'s ' +
      'Fig. 2 right); KL is estimated only at 1, the models\' own distributions', '1')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--batch_size <n>', 'sequences generated together', '32')
    .option('--chat', 'wrap text prompts in the chat template as a user message', false)
    .option('--output <file>', 'also write every sample as JSON lines (prompt, model, temperature, completion, reward)')
    .option('--json', 'print one JSON line of results (per temperature) instead of the text summary', false)
    .option('--shard <i/n>', 'evaluate part i of n of the prompts and write it to --output (no summary); `tsdpo merge-shards` merges the n files into the whole run\'s result')
    .addOption(new Option('--device <name>', 'cpu, webgpu or auto').choices(['auto', 'cpu', 'webgpu']).default('auto'))
    .action(async (o: EvalCliOptions) => {
      const samples = positiveInt('samples', o.samples), maxNewTokens = positiveInt('max_new_tokens', o.max_new_tokens);
      const batchSize = positiveInt('batch_size', o.batch_size), seed = Number(o.seed);
      const temperatures = o.temperature.split(',').map((t) => Number(t.trim()));
      if (!Number.isInteger(seed)) throw new Error(`--seed must be a whole number, got '${o.seed}'`);
      if (temperatures.some((t) => !(t > 0))) throw new Error(`--temperature must be > 0 (or a comma-separated list of such), got '${o.temperature}'`);
      if (!o.reference && !o.adapter) {
        throw new Error('tsdpo eval: --reference is required (the model before training, e.g. the SFT model DPO started from); ' +
          'with --adapter the reference defaults to --model without the adapter');
      }
      await initEngine({ device: o.device, log: (l) => process.stderr.write(`${l}\n`) });
      const tok = loadTokenizer(o.model);
      const reward = await loadReward(o.reward, o.reward_label);
      const policy = loadModel(o.model);
      const positions = Number(policy.config.n_positions ?? Infinity); // GPT-2's learned positions; rotary models have no hard limit
      const all = await readPrompts(o.prompts, o.prompt_field, tok, o.chat, maxNewTokens, positions);
      const shard = o.shard ? parseShard(o.shard) : null, [first, end] = shard ? shardRange(all.length, shard) : [0, all.length];
      if (shard && !o.output) throw new Error('tsdpo eval --shard: give --output FILE for the shard\'s samples');
      const prompts = all.slice(first, end), shardSamples: SampleLine[] = [];
      if (o.adapter) loadAdapter(policy, o.adapter);
      const reference = loadModel(o.reference ?? o.model);
      const lines: string[] = [];
      for (const temperature of temperatures) {
        // Row seeds and the whole run's prompt width: a shard's samples are the whole run's (eval/shard.ts).
        const opts = { samplesPerPrompt: samples, maxNewTokens, seed, batchSize, temperature, eosIds: tok.eosIds, rowSeeds: { firstPrompt: first }, promptWidth: Math.max(...all.map((p) => p.ids.length)) };
        const run = async (label: string, model: typeof policy) => {
          const bar = progress(`${label}, temperature ${temperature}: ${samples} completions x ${prompts.length} prompts`, samples * prompts.length, { silent: o.json });
          const e = await evaluatePolicy(model, reference, tok, prompts, reward, { ...opts, onProgress: (d) => bar.update(d) });
          bar.stop();
          return e;
        };
        const pol = await run('policy', policy);
        const ref = await run('reference', reference);
        for (const [name, e] of o.output ? [['policy', pol], ['reference', ref]] as const : []) {
          e.samples.forEach((g, i) => g.forEach((x, j) => {
            const line: SampleLine = { prompt: prompts[i].text, model: name, temperature, completion: x.text, reward: x.reward };
            if (!shard) lines.push(`${JSON.stringify(line)}\n`);
            else shardSamples.push({ ...line, prompt_index: first + i, sample: j, ...(name === 'policy' && pol.klTerms.length ? { kl_term: pol.klTerms[i * samples + j] } : {}) });
          }));
        }
        if (shard) continue;
        const result = evalResult({ temperature, policy: pol.samples.map((g) => g.map((x) => x.reward)), reference: ref.samples.map((g) => g.map((x) => x.reward)), klTerms: pol.klTerms }, samples);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(result)}\n`);
          continue;
        }
        process.stdout.write(formatResult(result, o.reward));
      }
      if (shard) {
        const settings = { model: o.model, adapter: o.adapter ?? null, reference: o.reference ?? null, prompts: o.prompts, reward: o.reward, samples_per_prompt: samples, max_new_tokens: maxNewTokens, temperatures, seed, chat: o.chat };
        writeFileAtomic(o.output!, shardLines({ shard: `${shard.index}/${shard.count}`, prompts: all.length, first_prompt: first, end_prompt: end, settings }, shardSamples));
      } else if (o.output) writeFileAtomic(o.output, lines.join(''));
    });
}
