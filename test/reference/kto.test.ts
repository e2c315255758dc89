// tsdpo kto vs TRL 1.13's KTOTrainer, side by side: each case trains one config on both sides and
// compares every metric TRL logs at every step (see harness.ts for the tolerances and the short list
// of metrics not compared). KTO trains in data order (TRL's sequential sampler), so both sides see
// the same batches and the same KL pairs; the random-order case relies on tsdpo drawing
// transformers' order, as the DPO suite does. The TRL runs of all cases share one Python process.
import { join } from 'node:path';
import { before } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { loadModel } from '../../src/models/load.js';
import { newAdapter, saveAdapter } from '../../src/models/lora.js';
import { COMMON_OPTIONS, defaultsOf } from '../../src/train/config.js';
import { KTO_OPTIONS, type KtoConfig } from '../../src/train/kto.js';
import { runKto } from '../../src/train/kto-run.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tempDir } from '../helpers/assets.js';
import {
  compareHistories,
  frozenOptions,
  HF_TINY,
  preferenceRows,
  referenceAvailable,
  runTrl,
  tinyFamily,
  writeRows,
  parityTests,
  type Diff,
  type Job,
} from './harness.js';

const avail = referenceAvailable();
const root = tempDir('tsdpo-ref-kto-');

interface Case {
  name: string;
  /** Options on top of BASE for both sides (tsdpo's names; the runner maps them to TRL's). */
  cfg: Record<string, unknown>;
  /** Options for one side only: the same run spelled differently. */
  ts?: Record<string, unknown>;
  trl?: Record<string, unknown>;
}

const model = (family: string, o: Parameters<typeof tinyFamily>[2] = {}): string => tinyFamily(root, family, o);

/** n unpaired rows: the completion is the chosen text where label(i), else the rejected one. */
const unpairedRows = (n: number, label: (i: number) => boolean, offset = 0) =>
  preferenceRows(n, offset).map((r, i) => ({
    prompt: r.prompt,
    completion: label(i) ? r.chosen : r.rejected,
    label: label(i),
  }));
const data = (name: string, n: number, label: (i: number) => boolean = (i) => i % 2 === 0, offset = 0): string =>
  writeRows(root, name, unpairedRows(n, label, offset));

/** Every case starts from this: 4 steps of 4 examples (2 epochs of 8), logged each step. */
const BASE = () => ({
  model_name_or_path: model('llama'),
  dataset: data('train8.jsonl', 8),
  learning_rate: 1e-3,
  max_steps: 4,
  per_device_train_batch_size: 4,
  logging_steps: 1,
  lr_scheduler_type: 'linear',
  seed: 42,
  max_grad_norm: 1,
});
/** A chat template both jinja engines render alike (characters of the toy vocabulary only). */
const CHAT =
  "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
const conversational = (name: string, n: number): string =>
  writeRows(
    root,
    name,
    unpairedRows(n, (i) => i % 3 !== 1).map((r) => ({
      prompt: [{ role: 'user', content: `Review:${r.prompt}` }],
      completion: [{ role: 'assistant', content: r.completion.trim() }],
      label: r.label,
    })),
  );
/** A reference that differs from the policy (the fixture's seed-1 weights): the KL estimate is not 0 from step 1. */
const REF = () => ({ ref_model: model('llama', { which: 'reference' }) });

/**
 * A new adapter as tsdpo's --use_peft makes it (its own random A, B = 0), saved: TRL starts from it,
 * and its frozen "ref" copy (B = 0) is the base model, tsdpo's reference under a new adapter (adapter off).
 */
const FRESH_ADAPTER = join(root, 'fresh-lora');
async function saveFreshAdapter(modelDir: string, o: { r: number; alpha: number; seed: number }): Promise<void> {
  const m = loadModel(modelDir);
  newAdapter(m, {
    r: o.r,
    alpha: o.alpha,
    targetModules: [],
    dropout: COMMON_OPTIONS.lora_dropout.default,
    seed: o.seed,
  });
  await saveAdapter(m, FRESH_ADAPTER, modelDir);
}

const CASES: Case[] = [
  { name: 'kto (llama)', cfg: {} },
  { name: 'kto, separate reference model (KL estimate above 0)', cfg: { ...REF() } },
  {
    name: 'desirable_weight 1.3, undesirable_weight 0.6, 3 of 4 undesirable',
    cfg: {
      ...REF(),
      dataset: data('imbalanced8.jsonl', 8, (i) => i % 4 === 0),
      desirable_weight: 1.3,
      undesirable_weight: 0.6,
    },
  },
  { name: 'loss_type apo_zero_unpaired', cfg: { ...REF(), loss_type: 'apo_zero_unpaired' } },
  {
    name: 'apo_zero_unpaired in random order',
    cfg: { ...REF(), loss_type: 'apo_zero_unpaired', train_sampling_strategy: 'random' },
  },
  {
    name: 'beta 0.5, full batch of 8 (gpt2)',
    cfg: { model_name_or_path: model('gpt2'), beta: 0.5, per_device_train_batch_size: 8, max_steps: 3 },
  },
  {
    name: 'gradient accumulation 2 x 2',
    cfg: { ...REF(), per_device_train_batch_size: 2, gradient_accumulation_steps: 2 },
  },
  // The first micro-batches hold desirable examples only: rewards/rejected and logits/rejected are
  // means over the micro-batches that have them (as TRL), not over the window.
  {
    name: 'micro-batches of one label only, logged every 2 steps',
    cfg: {
      ...REF(),
      dataset: data('blocks8.jsonl', 8, (i) => i < 2 || i >= 6),
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 2,
      logging_steps: 2,
      max_steps: 4,
    },
  },
  {
    name: '7 examples: a last block of 1 pairs with its own completion',
    cfg: { ...REF(), dataset: data('train7.jsonl', 7), max_steps: -1, num_train_epochs: 2 },
  },
  { name: 'max_length 14: completions cut, long prompts dropped', cfg: { ...REF(), max_length: 14 } },
  {
    name: 'LoRA from the same saved PEFT adapter (reference: its frozen copy)',
    cfg: { adapter: join(HF_TINY, 'llama', 'lora'), learning_rate: 1e-2 },
  },
  {
    name: 'new LoRA adapter (reference: adapter off; TRL starts from the same init)',
    cfg: { learning_rate: 1e-2 },
    ts: { use_peft: true, lora_r: 4, lora_alpha: 8 },
    trl: { adapter: FRESH_ADAPTER },
  },
  {
    name: 'conversational rows through a chat template',
    cfg: { model_name_or_path: model('llama', { chatTemplate: CHAT }), dataset: conversational('chat8.jsonl', 8) },
  },
  {
    name: 'paired preference rows, unpaired as TRL',
    cfg: { ...REF(), dataset: writeRows(root, 'pairs4.jsonl', preferenceRows(4)) },
  },
  {
    name: 'eval split every 2 steps (eval batch 3, KL blocks of the train batch 4)',
    cfg: {
      ...REF(),
      eval_dataset: data('eval7.jsonl', 7, (i) => i % 3 === 0, 100),
      eval_steps: 2,
      per_device_eval_batch_size: 3,
    },
  },
  {
    name: 'sync_ref_model every 2 steps (TR-DPO), with eval',
    cfg: {
      ...REF(),
      sync_ref_model: true,
      ref_model_sync_steps: 2,
      ref_model_mixup_alpha: 0.6,
      eval_dataset: data('eval6.jsonl', 6, (i) => i % 2 === 1, 100),
      eval_steps: 2,
    },
  },
  {
    name: 'precompute_ref_log_probs, with eval',
    cfg: {
      ...REF(),
      precompute_ref_log_probs: true,
      eval_dataset: data('eval6.jsonl', 6, (i) => i % 2 === 1, 100),
      eval_steps: 2,
    },
  },
];

const results = new Map<string, Diff>();

before(
  async () => {
    if (!avail.ok) return;
    await initEngine({ device: 'cpu' });
    await saveFreshAdapter(model('llama'), { r: 4, alpha: 8, seed: BASE().seed });
    const jobs: Job[] = [];
    const ts: Record<string, number>[][] = [];
    for (const [i, c] of CASES.entries()) {
      const both = { ...BASE(), ...c.cfg };
      const cfg = {
        ...defaultsOf({ ...COMMON_OPTIONS, ...KTO_OPTIONS }),
        device: 'cpu',
        save_steps: 0,
        ...both,
        ...c.ts,
        ...frozenOptions(both),
        output_dir: join(root, `ts-${i}`),
      } as KtoConfig;
      try {
        await runKto(cfg, { quiet: true, log: () => {} });
        ts.push(readMetrics(cfg.output_dir));
      } catch (e) {
        ts.push([{ error: String((e as Error).message) } as unknown as Record<string, number>]);
      }
      jobs.push({ config: { ...both, ...c.trl }, out: join(root, `trl-${i}.jsonl`) });
    }
    const ref = await runTrl(root, 'kto', jobs);
    CASES.forEach((c, i) => results.set(c.name, compareHistories(ref[i], ts[i])));
  },
  { timeout: 600_000 },
);

parityTests(
  'TRL 1.13 KTO parity',
  CASES.map((c) => c.name),
  results,
  avail,
);
