// Everything the studio asks of the tsdpo engine, in one place: loading models, sampling the two
// completions of a pair, judging by a reward, and running `tsdpo dpo` for the training tab. The
// rest of src/studio/ imports the engine only through this file.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  initEngine,
  loadModel,
  loadReward,
  loadTokenizer,
  type CausalLM,
  type DeviceName,
  type RewardFn,
  type TextTokenizer,
} from '../index.js';
import { Rng } from '../core/random.js';
import { padIdFor } from '../data/collate.js';
import { encodePrompt, tokenizePreference, type TokenizedPair } from '../data/tokenize.js';
import { generate } from '../eval/generate.js';
import { winRate } from '../eval/win-rate.js';
import { writeFileAtomic } from '../io/atomic.js';
import { parseSafetensors } from '../io/safetensors-format.js';
import { TOKENIZER_FILES } from '../train/run.js';

export interface SamplerOptions {
  /** The model that writes the completions (the policy). */
  model: string;
  /** A second model: one completion from each (else both from `model`). */
  reference?: string;
  device?: DeviceName;
  /** CPU threads for sampling (0: all cores). */
  threads?: number;
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
}

export interface Completion {
  text: string;
  source: string;
}

export interface Sampler {
  /** Whether the model has a chat template: prompts are then user turns, and exports are conversational. */
  chat: boolean;
  /** Two completions of `prompt`, in sampling order: [policy, reference] or [model, model]. */
  pair(prompt: string): Promise<[Completion, Completion]>;
}

let engineReady: Promise<unknown> | null = null;

/** Starts the engine once per process. */
function startEngine(device: DeviceName, threads: number): Promise<unknown> {
  engineReady ??= initEngine({ device, threads: threads || undefined, log: (l) => process.stderr.write(`${l}\n`) });
  return engineReady;
}

/** Loads the model (and reference) and their tokenizer; sampling is plain (temperature, no top-k / top-p). */
export async function loadSampler(o: SamplerOptions): Promise<Sampler> {
  await startEngine(o.device ?? 'cpu', o.threads ?? 0);
  const tok = loadTokenizer(o.model);
  const policy = loadModel(o.model);
  const ref = o.reference ? loadModel(o.reference) : null;
  const maxNew = o.maxNewTokens ?? 32;
  const rng = new Rng(o.seed ?? Date.now() % 2 ** 31);
  const once = async (m: CausalLM, prompt: string): Promise<string> => {
    const ids = promptIds(tok, m, prompt, maxNew);
    const g = await generate(m, [ids], {
      maxNewTokens: maxNew,
      doSample: true,
      temperature: o.temperature ?? 1,
      topK: 0,
      topP: 1,
      eosIds: tok.eosIds,
      padId: tok.padId ?? tok.eosId ?? 0,
      rng,
    });
    return tok.decode(g.tokens[0], { skipSpecialTokens: true });
  };
  return {
    chat: tok.hasChatTemplate,
    async pair(prompt) {
      if (ref)
        return [
          { text: await once(policy, prompt), source: 'policy' },
          { text: await once(ref, prompt), source: 'reference' },
        ];
      return [
        { text: await once(policy, prompt), source: 'model' },
        { text: await once(policy, prompt), source: 'model' },
      ];
    },
  };
}

/** Prompt ids (the chat template's user turn when there is one), cut from the left to leave room for the completion. */
function promptIds(tok: TextTokenizer, m: CausalLM, prompt: string, maxNew: number): number[] {
  const text = tok.hasChatTemplate
    ? tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true })
    : prompt;
  let ids = encodePrompt(tok, text);
  // GPT-2's learned positions; rotary models have no hard limit
  const positions = Number(m.config.n_positions ?? Infinity);
  if (ids.length + maxNew > positions) ids = ids.slice(ids.length + maxNew - positions);
  if (ids.length === 0) ids = [tok.bosId ?? tok.eosId ?? 0];
  return ids;
}

/** Whether a model folder has a chat template (without loading the model). */
export function hasChatTemplate(dir: string): boolean {
  return loadTokenizer(dir).hasChatTemplate;
}

/** A reward judge: 'sentiment', a module file, or a reward model folder (as `tsdpo eval --reward`). */
export function rewardJudge(spec: string): Promise<RewardFn> {
  return loadReward(spec);
}

/**
 * The trained policy's win rate against the reference judged by `judge`: `k` completions of each of
 * them per prompt, every policy completion against every reference one (ties 1/2), the mean over
 * prompts and its standard error across prompts (src/eval/win-rate.ts). `pair` samples [policy, reference].
 */
export async function rewardWinRate(
  s: Sampler,
  judge: RewardFn,
  prompts: readonly string[],
  k: number,
  serial: <T>(f: () => Promise<T>) => Promise<T>,
): Promise<{ n: number; winRate: number; stderr: number }> {
  const pol: number[][] = [],
    ref: number[][] = [];
  for (const p of prompts) {
    const a: number[] = [],
      b: number[] = [];
    for (let i = 0; i < k; i++) {
      const [x, y] = await serial(() => s.pair(p));
      a.push(await judge(p, x.text));
      b.push(await judge(p, y.text));
    }
    pol.push(a);
    ref.push(b);
  }
  const w = winRate(pol, ref);
  return { n: w.n, winRate: w.mean, stderr: w.se };
}

/** The settings of a studio training run (TRL's names where `tsdpo dpo` has them). */
export interface TrainSettings {
  model: string;
  data: string;
  output: string;
  max_steps: number;
  beta: number;
  learning_rate: number;
  per_device_train_batch_size: number;
  save_steps: number;
  device: string;
  resume: boolean;
}

export interface TrainHandle {
  stop(): void;
  readonly child: ChildProcess;
}

const CLI = fileURLToPath(new URL('../../../bin/tsdpo.js', import.meta.url));

/**
 * Runs `tsdpo dpo` in a child process (the same trainer and output folder as the command line): every
 * new line of OUTPUT/metrics.jsonl goes to onMetrics, stderr lines to onLog, and onExit gets the exit
 * code. stop() ends it (SIGTERM); `resume: true` continues from its last checkpoint.
 */
export function startTraining(
  s: TrainSettings,
  on: {
    onMetrics: (m: Record<string, number>) => void;
    onLog: (line: string) => void;
    onExit: (code: number | null) => void;
  },
): TrainHandle {
  const args = [
    CLI,
    'dpo',
    '--model',
    s.model,
    '--data',
    s.data,
    '--output',
    s.output,
    '--max_steps',
    String(s.max_steps),
    '--beta',
    String(s.beta),
    '--learning_rate',
    String(s.learning_rate),
    '--per_device_train_batch_size',
    String(s.per_device_train_batch_size),
    '--save_steps',
    String(s.save_steps),
    '--logging_steps',
    '1',
    '--device',
    s.device,
  ];
  if (s.resume) args.push('--resume');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const metrics = join(s.output, 'metrics.jsonl');
  // The complete lines of metrics.jsonl handled so far. A resumed run first rewrites the file with the
  // lines up to its checkpoint (shorter than what a stopped run had logged past it), then appends:
  // a byte offset would land inside a line, so new lines are those after the common prefix.
  const read = (): string[] => {
    if (!existsSync(metrics)) return [];
    const text = readFileSync(metrics, 'utf8');
    return text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l.trim());
  };
  let seen = s.resume ? read() : [];
  const poll = (): void => {
    const lines = read();
    let same = 0;
    while (same < lines.length && same < seen.length && lines[same] === seen[same]) same++;
    for (const line of lines.slice(same)) on.onMetrics(JSON.parse(line));
    seen = lines;
  };
  const timer = setInterval(poll, 300);
  let tail = '';
  child.stderr!.on('data', (d) => {
    tail += String(d);
    const lines = tail.split(/\r?\n|\r/);
    tail = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) on.onLog(l);
  });
  child.stdout!.resume();
  child.on('exit', (code) => {
    clearInterval(timer);
    poll();
    on.onExit(code);
  });
  return {
    child,
    stop: () => {
      child.kill('SIGTERM');
    },
  };
}

/**
 * The labeled pairs tokenized for training in the tab (standard rows: the prompt, each completion
 * with EOS, as `tsdpo dpo` tokenizes them), cut to the model's positions from the prompt's start.
 */
export async function tabData(
  modelDir: string,
  rows: readonly { prompt: string; chosen: string; rejected: string }[],
): Promise<{ pairs: TokenizedPair[]; padId: number }> {
  const tok = loadTokenizer(modelDir);
  if (tok.hasChatTemplate)
    throw new Error(
      `${modelDir} has a chat template: training in the tab takes standard rows only; train on the server`,
    );
  const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as { n_positions?: number };
  const maxLength = Math.min(1024, config.n_positions ?? 1024); // TRL's max_length, within GPT-2's learned positions
  const pairs: TokenizedPair[] = [];
  for (const r of rows) {
    const t = tokenizePreference(tok, r, { maxLength, truncationMode: 'keep_end' });
    if (t) pairs.push(t.value);
  }
  return { pairs, padId: padIdFor(tok) };
}

/**
 * Saves a part of a run trained in the tab into outDir: 'metrics' (metrics.jsonl) or 'model' (the
 * weights as model.safetensors, checked to parse and to hold the model's tensors, with config.json
 * and the tokenizer files copied from the model), so that the folder loads as a model.
 */
export function saveTabRun(modelDir: string, outDir: string, part: 'model' | 'metrics', bytes: Uint8Array): void {
  mkdirSync(outDir, { recursive: true });
  if (part === 'metrics') {
    writeFileAtomic(join(outDir, 'metrics.jsonl'), bytes);
    return;
  }
  const got = parseSafetensors(bytes, 'model.safetensors from the tab').tensors;
  const want = parseSafetensors(
    readFileSync(join(modelDir, 'model.safetensors')),
    join(modelDir, 'model.safetensors'),
  ).tensors;
  for (const [name, t] of want) {
    const g = got.get(name);
    if (!g || g.shape.join(',') !== t.shape.join(','))
      throw new Error(
        `model.safetensors from the tab: tensor ${name} is ` +
          `${g ? `[${g.shape}]` : 'missing'}, the model has [${t.shape}]`,
      );
  }
  for (const f of TOKENIZER_FILES) if (existsSync(join(modelDir, f))) copyFileSync(join(modelDir, f), join(outDir, f));
  const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileAtomic(
    join(outDir, 'config.json'),
    `${JSON.stringify({ ...config, torch_dtype: 'float32', dtype: 'float32' }, null, 2)}\n`,
  );
  writeFileAtomic(join(outDir, 'model.safetensors'), bytes); // last: a folder with weights is a finished run
}
