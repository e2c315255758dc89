// tsdpo reward vs TRL 1.13's RewardTrainer, side by side: both sides start from the same one-label
// *ForSequenceClassification folder (made by transformers from an hf-tiny family), train one config
// each, and every metric TRL logs is compared at every step (harness.ts). The folders tsdpo saves are
// then loaded by transformers and must score rows as TRL's trained model does. The TRL runs share one
// Python process.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { loadRewardModel, scoreSequences } from '../../src/eval/reward-model.js';
import { defaultsOf } from '../../src/train/config.js';
import { rewardConfig, REWARD_SPECS, type RewardConfig } from '../../src/train/reward-config.js';
import { runReward } from '../../src/train/run-reward.js';
import { readMetrics } from '../../src/train/trainer.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { ROOT, tempDir } from '../helpers/assets.js';
import {
  compareHistories,
  preferenceRows,
  referenceAvailable,
  runPython,
  runTrl,
  tinyFamily,
  writeRows,
  parityTests,
  type Diff,
  type Job,
} from './harness.js';

const avail = referenceAvailable();
const root = tempDir('tsdpo-ref-reward-');
const MAKE = join(ROOT, 'scripts', 'reference', 'trl_reward.py');

/** A chat template both jinja engines render alike (characters of the toy vocabulary only). */
const CHAT =
  "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% " +
  'endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}';

/** Where the same tiny family lives as a one-label classifier (made in before(), by transformers). */
const seqcls = (family: string, o: Parameters<typeof tinyFamily>[2] = {}): string =>
  `${tinyFamily(root, family, o)}-seqcls`;
const MADE = [
  ['llama', {}],
  ['gpt2', {}],
  ['llama', { chatTemplate: CHAT }],
] as const;
/** A PEFT adapter of the llama classifier (random factors, its own score head), made in before(). */
const LORA = join(root, 'llama-seqcls-lora');

interface Case {
  name: string;
  cfg: Record<string, unknown>;
}

const data = (name: string, n: number, offset = 0, extra: (i: number) => object = () => ({})): string =>
  writeRows(
    root,
    name,
    preferenceRows(n, offset).map((r, i) => ({ ...r, ...extra(i) })),
  );

const results = new Map<string, Diff>();
let scores: Record<string, number[]> = {};
const tsScores: Record<string, number[]> = {};
const SCORE_ROWS = [
  'The movie: was great.</s>',
  'The movie: was dull.</s>',
  'Acting is a joy to watch!</s>',
  'Its score was awful, slow and boring.',
];

const [llama, gpt2, llamaChat] = MADE.map(([f, o]) => seqcls(f, o));
const BASE = {
  model_name_or_path: llama,
  dataset: data('train8.jsonl', 8),
  learning_rate: 1e-3,
  max_steps: 4,
  per_device_train_batch_size: 4,
  logging_steps: 1,
  lr_scheduler_type: 'linear',
  seed: 42,
  max_grad_norm: 1,
};
const conversational = writeRows(
  root,
  'chat8.jsonl',
  preferenceRows(8).map((r) => ({
    prompt: [{ role: 'user', content: `Review:${r.prompt}` }],
    chosen: [{ role: 'assistant', content: r.chosen.trim() }],
    rejected: [{ role: 'assistant', content: r.rejected.trim() }],
  })),
);
const implicitChat = writeRows(
  root,
  'chat-implicit8.jsonl',
  preferenceRows(8).map((r) => ({
    chosen: [
      { role: 'user', content: r.prompt },
      { role: 'assistant', content: r.chosen.trim() },
    ],
    rejected: [
      { role: 'user', content: r.prompt },
      { role: 'assistant', content: r.rejected.trim() },
    ],
  })),
);
const CASES: Case[] = [
  { name: 'llama, explicit text prompts', cfg: {} },
  {
    name: 'gpt2, full batch, constant rate',
    cfg: { model_name_or_path: gpt2, per_device_train_batch_size: 8, lr_scheduler_type: 'constant' },
  },
  {
    name: 'implicit prompts (whole chosen / rejected texts)',
    cfg: {
      dataset: writeRows(
        root,
        'implicit8.jsonl',
        preferenceRows(8).map((r) => ({ chosen: r.prompt + r.chosen, rejected: r.prompt + r.rejected })),
      ),
    },
  },
  {
    name: 'conversational rows through a chat template',
    cfg: { model_name_or_path: llamaChat, dataset: conversational, learning_rate: 5e-4 },
  },
  { name: 'conversational rows, implicit prompt', cfg: { model_name_or_path: llamaChat, dataset: implicitChat } },
  {
    name: 'margin column + center_rewards_coefficient 0.01',
    cfg: { dataset: data('margin8.jsonl', 8, 0, (i) => ({ margin: (i % 3) * 0.5 })), center_rewards_coefficient: 0.01 },
  },
  {
    name: 'accumulation 2 x 2, eval split every 2 steps',
    cfg: {
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 2,
      eval_dataset: data('eval6.jsonl', 6, 100),
      eval_steps: 2,
      per_device_eval_batch_size: 4,
    },
  },
  {
    name: 'max_length 24 drops the longer rows (3 of 8 left); 2 epochs, a short last batch',
    cfg: { max_length: 24, max_steps: -1, num_train_epochs: 2, per_device_train_batch_size: 2 },
  },
  {
    name: 'LoRA from the same PEFT adapter (score head in modules_to_save)',
    cfg: { adapter: LORA, learning_rate: 1e-2 },
  },
  {
    name: 'warmup + cosine, weight decay, clipping active',
    cfg: { warmup_ratio: 0.25, lr_scheduler_type: 'cosine', max_steps: 6, weight_decay: 0.1, max_grad_norm: 0.01 },
  },
];

before(
  async () => {
    if (!avail.ok) return;
    await initEngine({ device: 'cpu' });
    await Promise.all(
      MADE.map(([f, o]) => runPython([MAKE, 'make-seqcls', tinyFamily(root, f, o), seqcls(f, o), '7'], root)),
    );
    await runPython([MAKE, 'make-lora', llama, LORA, '3'], root);
    const jobs: Job[] = [];
    const ts: Record<string, number>[][] = [];
    const specs = defaultsOf(REWARD_SPECS);
    for (const [i, c] of CASES.entries()) {
      const both = { ...BASE, ...c.cfg };
      const cfg: RewardConfig = {
        ...rewardConfig({ ...specs, ...both } as typeof specs),
        device: 'cpu',
        save_steps: 0,
        output_dir: join(root, `ts-${i}`),
      };
      try {
        await runReward(cfg, { quiet: true, log: () => {} });
        ts.push(readMetrics(cfg.output_dir));
      } catch (e) {
        ts.push([{ error: String((e as Error).message) } as unknown as Record<string, number>]);
      }
      jobs.push({ config: both, out: join(root, `trl-${i}.jsonl`) });
    }
    // Runs from the causal LM folder: a new seeded head (and a new adapter). Their numbers cannot match
    // torch's draws, so only their saved folders are checked: transformers (and PEFT) must load them and
    // score as tsdpo does.
    const extra = { ...BASE, model_name_or_path: tinyFamily(root, 'llama'), max_steps: 2 };
    for (const [name, more] of [
      ['ts-causal', {}],
      ['ts-causal-lora', { use_peft: true, lora_r: 4 }],
    ] as const) {
      await runReward(
        {
          ...rewardConfig({ ...specs, ...extra, ...more } as typeof specs),
          device: 'cpu',
          save_steps: 0,
          output_dir: join(root, name),
        },
        { quiet: true, log: () => {} },
      );
    }
    const lora = CASES.findIndex((c) => c.cfg.adapter);
    const scored: [number, string[]][] = [
      [0, ['ts-0', 'ts-causal', 'ts-causal-lora']],
      [lora, [`ts-${lora}`]],
    ];
    for (const [i, names] of scored) {
      const dirs = names.map((n) => join(root, n));
      for (const d of dirs) {
        const rm = loadRewardModel(d);
        const tok = loadTokenizer(d);
        tsScores[d] = (
          await scoreSequences(
            rm,
            SCORE_ROWS.map((t) => tok.encode(t)),
          )
        ).map((s) => s[0]);
      }
      Object.assign(jobs[i].config, {
        score_rows: SCORE_ROWS,
        score_dirs: dirs,
        scores_out: join(root, `scores-${i}.json`),
      });
    }
    const ref = await runTrl(root, 'reward', jobs);
    CASES.forEach((c, i) => results.set(c.name, compareHistories(ref[i], ts[i])));
    for (const [i] of scored) {
      const got = JSON.parse(readFileSync(join(root, `scores-${i}.json`), 'utf8')) as Record<string, number[]>;
      scores[`trl-${i}`] = got.trl;
      for (const [k, v] of Object.entries(got)) if (k !== 'trl') scores[k] = v;
    }
  },
  { timeout: 900_000 },
);

parityTests(
  'TRL 1.13 RewardTrainer parity',
  CASES.map((c) => c.name),
  results,
  avail,
);

const near = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b));

for (const [what, n] of [
  ['full model', 0],
  ['LoRA adapter', CASES.findIndex((c) => c.cfg.adapter)],
] as const) {
  test(
    `the saved reward model (${what}), loaded by transformers, scores rows as TRL's trained model does`,
    { skip: avail.ok ? false : avail.why },
    () => {
      const d = join(root, `ts-${n}`),
        want = scores[`trl-${n}`];
      assert.ok(want && scores[d] && tsScores[d], 'the scoring runs did not finish');
      want.forEach((w, i) => {
        assert.ok(near(scores[d][i], w), `row ${i}: transformers on tsdpo's folder ${scores[d][i]}, TRL's model ${w}`);
        assert.ok(
          near(tsScores[d][i], w),
          `row ${i}: tsdpo's own scoring (tsdpo eval's judge) ${tsScores[d][i]}, TRL's model ${w}`,
        );
      });
    },
  );
}

for (const name of ['ts-causal', 'ts-causal-lora']) {
  test(
    `a reward model started from a causal LM (new score ` +
      `head${name.endsWith('lora') ? ', new LoRA adapter' : ''}) loads in transformers with the scores tsdpo gives`,
    { skip: avail.ok ? false : avail.why },
    () => {
      const d = join(root, name);
      assert.ok(scores[d] && tsScores[d], 'the scoring runs did not finish');
      scores[d].forEach((w, i) =>
        assert.ok(near(tsScores[d][i], w), `row ${i}: transformers ${w}, tsdpo ${tsScores[d][i]}`),
      );
    },
  );
}
