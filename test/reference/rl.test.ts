// tsdpo grpo / rloo vs TRL 1.13's GRPOTrainer / RLOOTrainer on the same fixed completions
// (scripts/reference/trl_grpo.py replaces TRL's sampling; tsdpo's rollout is replaced alike):
// every logged metric per step, the advantages, the per-token log-probs of each training forward,
// and the parameters after training. Expected values come from TRL.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { loadHfFolder } from '../../src/io/hf.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { GRPO_OPTIONS, RLOO_OPTIONS, type GrpoConfig, type RlooConfig } from '../../src/rl/grpo-config.js';
import { loadPrompts } from '../../src/rl/prompts.js';
import { runGrpo, runRloo } from '../../src/rl/grpo-run.js';
import { defaultsOf } from '../../src/train/config.js';
import { readMetrics } from '../../src/train/trainer.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { encodePrompt } from '../../src/data/tokenize.js';
import { tempDir } from '../helpers/assets.js';
import {
  compareHistories,
  frozenApplies,
  frozenOptions,
  HF_TINY,
  NOT_COMPARED,
  referenceAvailable,
  RUNNER,
  runPython,
  tinyFamily,
  writeRows,
} from './harness.js';

NOT_COMPARED.step_time = 'wall-clock time of a step (TRL GRPO / RLOO)';

const avail = referenceAvailable();
const root = tempDir('tsdpo-ref-rl-');

interface Case {
  name: string;
  method: 'grpo' | 'rloo';
  cfg: Record<string, unknown>;
  /**
   * With gradient_accumulation_steps > 1 each side shuffles the generation batch with its own random
   * numbers before cutting it into micro-batches, so only metrics that do not depend on that cut are
   * compared (loss and gradient for loss types averaged over the whole batch, rollout metrics).
   */
  splitInvariantOnly?: boolean;
}

/** Metrics that are means over a micro-batch (they depend on how the generation batch is cut). */
const PER_MICRO = /^(entropy|kl|clip_ratio\/)/;

const G = 4,
  EOS = 2;
/** A chat template both jinja engines render alike (characters of the toy vocabulary only). */
const CHAT =
  "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
const PROMPTS = ['The movie:', 'This film', 'Acting'];
/**
 * Completions per prompt (toy-vocabulary ids): some end with EOS, some stop at max_completion_length
 * (6) without it (truncated); the third prompt's four are equal, so its group's rewards have std 0.
 */
const COMPLETIONS = [
  [
    [5, 9, 14, EOS],
    [7, 7, 30, 41, 12, 8],
    [20, EOS],
    [11, 3, 45, 17, 33, 60],
  ],
  [
    [44, 21, 9, 9, 5, EOS],
    [6, 52, 13, EOS],
    [70, 71, 72, 73, 74, 75],
    [15, 16, EOS],
  ],
  [
    [8, 30, EOS],
    [8, 30, EOS],
    [8, 30, EOS],
    [8, 30, EOS],
  ],
];
const REWARD_MODULE = `export function idsum(prompts, completions, extra) { return extra.completion_ids.map((ids) => (ids.reduce((a, b) => a + b, 0) % 13) / 13); }
export default idsum;
`;
const LENGTH_MODULE = `export default function length(prompts, completions, extra) { return extra.completion_ids.map((ids) => ids.length / 10); }
`;

const CASES: Case[] = [
  ...['grpo', 'bnpo', 'dr_grpo', 'dapo'].map((l) => ({
    name: `grpo loss_type ${l}`,
    method: 'grpo' as const,
    cfg: { loss_type: l },
  })),
  { name: 'grpo scale_rewards batch', method: 'grpo', cfg: { loss_type: 'grpo', scale_rewards: 'batch' } },
  { name: 'grpo scale_rewards none (bnpo)', method: 'grpo', cfg: { loss_type: 'bnpo', scale_rewards: 'none' } },
  { name: 'grpo beta 0.1 (k3 KL)', method: 'grpo', cfg: { beta: 0.1 } },
  {
    name: 'grpo mask_truncated_completions, two rewards weighted',
    method: 'grpo',
    cfg: { mask_truncated_completions: true, rewards: ['idsum', 'length'], reward_weights: ['1', '0.5'] },
  },
  {
    name: 'grpo num_iterations 2, epsilon_high 0.28, temperature 0.7 (clipping)',
    method: 'grpo',
    cfg: { num_iterations: 2, epsilon_high: 0.28, temperature: 0.7, learning_rate: 3, max_steps: 4, loss_type: 'grpo' },
  },
  {
    name: 'grpo num_iterations 2, dr_grpo, beta 0.05',
    method: 'grpo',
    cfg: { num_iterations: 2, beta: 0.05, learning_rate: 3, max_steps: 4, loss_type: 'dr_grpo' },
  },
  ...['grpo', 'dapo'].map((l) => ({
    name: `grpo ${l}, gradient_accumulation_steps 2 (per_device_train_batch_size 6 does not hold a whole group)`,
    method: 'grpo' as const,
    cfg: { loss_type: l, per_device_train_batch_size: 6, gradient_accumulation_steps: 2 },
    splitInvariantOnly: true,
  })),
  {
    name: 'grpo on conversational prompts (chat template)',
    method: 'grpo',
    cfg: { chat: true, loss_type: 'bnpo', beta: 0.05 },
  },
  {
    name: 'grpo on a saved LoRA adapter, beta 0.1 (reference: its frozen copy)',
    method: 'grpo',
    cfg: { adapter: join(HF_TINY, 'llama', 'lora'), beta: 0.1, loss_type: 'grpo' },
  },
  { name: 'rloo defaults (beta 0.05)', method: 'rloo', cfg: {} },
  {
    name: 'rloo on a saved LoRA adapter (reference: its frozen copy)',
    method: 'rloo',
    cfg: { adapter: join(HF_TINY, 'llama', 'lora') },
  },
  {
    name: 'rloo normalize_advantages, reward_clip_range, mask_truncated',
    method: 'rloo',
    cfg: { normalize_advantages: true, reward_clip_range: ['0.1', '0.6'], mask_truncated_completions: true },
  },
  {
    name: 'rloo beta 0, num_iterations 2 (clipping)',
    method: 'rloo',
    cfg: { beta: 0, num_iterations: 2, learning_rate: 3, max_steps: 4 },
  },
];

interface Debug {
  advantages: number[][];
  logps: number[][][];
  params: Record<string, number[]>;
}

const results = new Map<
  string,
  {
    trl: Record<string, number>[];
    ts: Record<string, number>[];
    trlDebug: Debug;
    tsAdv: number[];
    tsLogps: number[][];
    out: string;
  }
>();

before(async () => {
  if (!avail.ok) return;
  await initEngine({ device: 'cpu', threads: 1 });
  const model = tinyFamily(root, 'llama');
  const dataset = writeRows(
    root,
    'prompts.jsonl',
    PROMPTS.map((prompt, i) => ({ prompt, topic: `t${i}` })),
  );
  writeFileSync(join(root, 'idsum.mjs'), REWARD_MODULE);
  writeFileSync(join(root, 'length.mjs'), LENGTH_MODULE);
  // Conversational prompts: the chat template renders each user message (TRL tokenizes it with
  // apply_chat_template; a different tokenization has no fixed completions on TRL's side).
  const chatModel = tinyFamily(root, 'llama', { chatTemplate: CHAT });
  const chatData = writeRows(
    root,
    'chat-prompts.jsonl',
    PROMPTS.map((p, i) => ({ prompt: [{ role: 'user', content: p }], topic: `t${i}` })),
  );
  const chatKeys = (await loadPrompts(chatData, loadTokenizer(chatModel), 'prompt')).map((p) => p.ids.join(','));
  const tok = loadTokenizer(model);
  const keys = PROMPTS.map((p) => encodePrompt(tok, p).join(','));
  const completions = Object.fromEntries([...keys, ...chatKeys].map((k, i) => [k, COMPLETIONS[i % PROMPTS.length]]));
  const base = {
    model_name_or_path: model,
    dataset,
    optim: 'sgd',
    learning_rate: 0.5,
    max_steps: 2,
    per_device_train_batch_size: 12,
    num_generations: G,
    max_completion_length: 6,
    logging_steps: 1,
    seed: 42,
    max_grad_norm: 1,
  };
  const jobs = { grpo: [] as object[], rloo: [] as object[] };
  CASES.forEach((c, i) => {
    const { rewards = ['idsum'], ...rest } = c.cfg as { rewards?: string[] };
    const chat = (rest as { chat?: boolean }).chat ? { model_name_or_path: chatModel, dataset: chatData } : {};
    delete (rest as { chat?: boolean }).chat;
    jobs[c.method].push({
      config: { ...base, ...chat, ...rest, rewards, completions, debug_out: join(root, `debug-${i}.json`) },
      out: join(root, `trl-${i}.jsonl`),
      round_frozen_bf16: frozenApplies(rest),
    });
  });
  for (const m of ['grpo', 'rloo'] as const) {
    const file = join(root, `jobs-${m}.json`);
    writeFileSync(file, JSON.stringify(jobs[m]));
    await runPython([RUNNER, '--trainer', m, '--jobs', file], root).catch((e: Error) => {
      process.stderr.write(`${e.message}\n`);
    });
  }
  for (const [i, c] of CASES.entries()) {
    const { rewards = ['idsum'], ...rest } = c.cfg as { rewards?: string[] };
    const out = join(root, `ts-${i}`);
    const specs = c.method === 'grpo' ? GRPO_OPTIONS : RLOO_OPTIONS;
    const chat = (rest as { chat?: boolean }).chat ? { model_name_or_path: chatModel, dataset: chatData } : {};
    delete (rest as { chat?: boolean }).chat;
    const cfg = {
      ...defaultsOf(specs),
      ...base,
      ...chat,
      ...rest,
      ...frozenOptions(rest),
      reward_funcs: rewards.map((r) => join(root, `${r}.mjs`)),
      output_dir: out,
      device: 'cpu',
      threads: 1,
    };
    const seen = new Map<number, number>();
    const rollout = async (_ids: number[][], promptIndex: number[]): Promise<number[][]> => {
      seen.clear();
      return promptIndex.map((p) => {
        const k = seen.get(p) ?? 0;
        seen.set(p, k + 1);
        return COMPLETIONS[p][k];
      });
    };
    const tsAdv: number[] = [],
      tsLogps: number[][] = [];
    const onMicro = (m: { advantages: number[]; logps: number[][] }): void => {
      tsAdv.push(...m.advantages);
      tsLogps.push(...m.logps);
    };
    let ts: Record<string, number>[];
    try {
      const run =
        c.method === 'grpo'
          ? runGrpo(cfg as GrpoConfig, { quiet: true, log: () => {}, rollout, onMicro })
          : runRloo(cfg as RlooConfig, { quiet: true, log: () => {}, rollout, onMicro });
      await run;
      ts = readMetrics(out);
    } catch (e) {
      ts = [{ error: String((e as Error).stack) } as unknown as Record<string, number>];
    }
    let trl: Record<string, number>[], trlDebug: Debug;
    try {
      trl = readFileSync(join(root, `trl-${i}.jsonl`), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l));
      trlDebug = JSON.parse(readFileSync(join(root, `debug-${i}.json`), 'utf8'));
    } catch (e) {
      trl = [{ error: String(e) } as unknown as Record<string, number>];
      trlDebug = { advantages: [], logps: [], params: {} };
    }
    results.set(c.name, { trl, ts, trlDebug, tsAdv, tsLogps, out });
  }
});

const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
/** A row of per-token log-probs as a sortable key (its values rounded). */
const rowKey = (r: number[]): string => r.map((v) => v.toFixed(2)).join(',');

for (const c of CASES) {
  test(`TRL 1.13 parity (fixed completions): ${c.name}`, { skip: avail.ok ? false : avail.why }, () => {
    const r = results.get(c.name)!;
    const trl = c.splitInvariantOnly
      ? r.trl.map((l) => Object.fromEntries(Object.entries(l).filter(([k]) => !PER_MICRO.test(k))))
      : r.trl;
    const diff = compareHistories(trl, r.ts, 2e-4);
    assert.deepEqual(diff.problems, [], diff.problems.join('\n'));
    // Advantages of every generation batch (as multisets: the two sides order rows differently).
    const trlAdv = r.trlDebug.advantages.flat();
    const every = c.cfg.num_iterations === 2 ? 2 : 1; // a batch is reused num_iterations times on tsdpo's side
    const tsAdv = r.tsAdv.filter((_, i) => Math.floor(i / 12) % every === 0);
    assert.equal(tsAdv.length, trlAdv.length, 'one advantage per completion of each generation batch');
    sorted(trlAdv).forEach((a, i) =>
      assert.ok(Math.abs(a - sorted(tsAdv)[i]) < 2e-4, `advantage ${i}: TRL ${a}, tsdpo ${sorted(tsAdv)[i]}`),
    );
    // Per-token log-probs of each training forward (rows matched by their values).
    const trlRows = r.trlDebug.logps.flat().map((row) => row.slice(0, 6));
    assert.equal(r.tsLogps.length, trlRows.length);
    const mine = [...r.tsLogps].sort((a, b) => rowKey(a).localeCompare(rowKey(b)));
    const byKey = [...trlRows].sort((a, b) => rowKey(a).localeCompare(rowKey(b)));
    let maxLogp = 0;
    mine.forEach((row, i) =>
      row.forEach((v, t) => {
        maxLogp = Math.max(maxLogp, Math.abs(v - byKey[i][t]));
      }),
    );
    assert.ok(maxLogp < 2e-4, `per-token log-probs differ by up to ${maxLogp}`);
    // Parameters after training (an adapter's: PEFT names them with the adapter name, .default).
    const adapterFile = join(r.out, 'adapter_model.safetensors');
    const tensors = existsSync(adapterFile) ? readSafetensors(adapterFile).tensors : loadHfFolder(r.out).tensors;
    let maxParam = 0,
      compared = 0;
    for (const [name, t] of tensors) {
      const want =
        r.trlDebug.params[name] ?? r.trlDebug.params[name.replace(/\.(lora_[AB])\.weight$/, '.$1.default.weight')];
      if (!want) continue;
      const got = t.toFloat32();
      compared++;
      for (let i = 0; i < want.length; i++) maxParam = Math.max(maxParam, Math.abs(want[i] - got[i]));
    }
    assert.ok(compared > 0, 'no parameters compared');
    assert.ok(maxParam < 1e-4, `parameters after training differ by up to ${maxParam}`);
    process.stderr.write(
      `# ${c.name}: max diff ${JSON.stringify({ ...diff.max, logps: maxLogp, params: maxParam }, (_, v) => (typeof v === 'number' ? Number(v.toExponential(1)) : v))}\n`,
    );
  });
}
