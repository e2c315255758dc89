// tsdpo sft vs TRL 1.13's SFTTrainer, side by side: each case trains one config on both sides and
// compares every metric TRL logs at every step (loss, grad_norm, learning_rate, entropy,
// mean_token_accuracy, num_tokens, epoch; eval_* and the run summary). The TRL runs share one
// Python process.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { COMMON_OPTIONS, defaultsOf, SFT_OPTIONS, type SftConfig } from '../../src/train/config.js';
import { runSft } from '../../src/train/run.js';
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
const root = tempDir('tsdpo-ref-sft-');

interface Case {
  name: string;
  /** Options on top of BASE for both sides (tsdpo's names; the runner maps them to TRL's). */
  cfg: Record<string, unknown>;
}

const model = (family: string, o: Parameters<typeof tinyFamily>[2] = {}): string => tinyFamily(root, family, o);
/** n prompt-completion rows of varied lengths. */
const pc = (name: string, n: number, offset = 0): string =>
  writeRows(
    root,
    name,
    preferenceRows(n, offset).map((r) => ({ prompt: r.prompt, completion: r.chosen })),
  );
const text = (name: string, n: number): string =>
  writeRows(
    root,
    name,
    preferenceRows(n).map((r) => ({ text: r.prompt + r.chosen })),
  );
const CHAT =
  "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
const messages = (name: string, n: number): string =>
  writeRows(
    root,
    name,
    preferenceRows(n).map((r) => ({
      messages: [
        { role: 'user', content: `Review:${r.prompt}` },
        { role: 'assistant', content: r.chosen.trim() },
      ],
    })),
  );

/** Multi-turn conversations: two user and two assistant turns each. */
const turns = (name: string, n: number): string =>
  writeRows(
    root,
    name,
    preferenceRows(n).map((r, i) => ({
      messages: [
        { role: 'user', content: `Review:${r.prompt}` },
        { role: 'assistant', content: r.chosen.trim() },
        { role: 'user', content: i % 2 ? 'Why?' : 'More' },
        { role: 'assistant', content: r.rejected.trim() },
      ],
    })),
  );
/** Prompts with an earlier assistant turn (masked by the completion mask, kept by completion_only_loss false). */
const pcChat = (name: string, n: number): string =>
  writeRows(
    root,
    name,
    preferenceRows(n).map((r) => ({
      prompt: [
        { role: 'user', content: `Review:${r.prompt}` },
        { role: 'assistant', content: r.rejected.trim() },
        { role: 'user', content: 'Again?' },
      ],
      completion: [{ role: 'assistant', content: r.chosen.trim() }],
    })),
  );
// A template whose assistant turns are {% generation %} blocks (the end-of-turn newline inside).
const CHAT_GEN =
  "{% for m in messages %}{% if m['role'] == 'assistant' %}<|assistant|>{% generation %}{{ m['content'] }}\n{% endgeneration %}" +
  "{% else %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

const writeText = (name: string, text: string): string => {
  writeFileSync(join(root, name), text);
  return join(root, name);
};

const BASE = () => ({
  model_name_or_path: model('llama'),
  dataset: pc('pc8.jsonl', 8),
  learning_rate: 1e-3,
  max_steps: 4,
  per_device_train_batch_size: 4,
  logging_steps: 1,
  lr_scheduler_type: 'linear',
  seed: 42,
  max_grad_norm: 1,
});

const CASES: Case[] = [
  { name: 'prompt-completion, completion only (llama)', cfg: {} },
  {
    name: 'prompt-completion, full batch, constant rate (gpt2)',
    cfg: { model_name_or_path: model('gpt2'), per_device_train_batch_size: 8, lr_scheduler_type: 'constant' },
  },
  { name: 'completion_only_loss false (loss on prompt tokens too)', cfg: { completion_only_loss: false } },
  { name: 'plain text rows', cfg: { dataset: text('text8.jsonl', 8) } },
  {
    name: 'dataset_text_field content',
    cfg: {
      dataset: writeRows(
        root,
        'content8.jsonl',
        preferenceRows(8).map((r) => ({ content: r.prompt + r.chosen })),
      ),
      dataset_text_field: 'content',
    },
  },
  {
    name: 'gradient accumulation 2 x 2, warmup + cosine',
    cfg: {
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 2,
      warmup_ratio: 0.25,
      lr_scheduler_type: 'cosine',
      max_steps: 6,
    },
  },
  { name: 'max_length 8 (cut, keep_start)', cfg: { max_length: 8 } },
  {
    name: 'eval split every 2 steps',
    cfg: { eval_dataset: pc('evalpc6.jsonl', 6, 100), eval_steps: 2, per_device_eval_batch_size: 4 },
  },
  {
    name: 'conversational messages through a chat template',
    cfg: { model_name_or_path: model('llama', { chatTemplate: CHAT }), dataset: messages('chat8.jsonl', 8) },
  },
  {
    name: 'LoRA from the same saved PEFT adapter',
    cfg: { adapter: join(HF_TINY, 'llama', 'lora'), learning_rate: 1e-2 },
  },
  { name: 'qwen3', cfg: { model_name_or_path: model('qwen3') } },
  {
    name: 'packing bfd (padding-free rows, positions restart), packed eval',
    cfg: {
      packing: true,
      max_length: 40,
      per_device_train_batch_size: 2,
      dataset: pc('pc16.jsonl', 16),
      eval_dataset: pc('evalpc6.jsonl', 6, 100),
      eval_steps: 2,
      per_device_eval_batch_size: 2,
    },
  },
  {
    name: 'packing bfd_split, pad_to_multiple_of 16, accumulation 2',
    cfg: {
      packing: true,
      packing_strategy: 'bfd_split',
      max_length: 24,
      pad_to_multiple_of: 16,
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 2,
    },
  },
  {
    name: 'packing wrapped, text rows, eval_packing false',
    cfg: {
      packing: true,
      packing_strategy: 'wrapped',
      max_length: 32,
      per_device_train_batch_size: 2,
      dataset: text('text12.jsonl', 12),
      eval_dataset: text('text12.jsonl', 12),
      eval_packing: 'false',
      eval_steps: 2,
      per_device_eval_batch_size: 4,
    },
  },
  {
    name: 'padding_free without packing, pad_to_multiple_of 8, eval',
    cfg: {
      padding_free: true,
      max_length: 0,
      pad_to_multiple_of: 8,
      eval_dataset: pc('evalpc6.jsonl', 6, 100),
      eval_steps: 2,
      per_device_eval_batch_size: 4,
    },
  },
  { name: 'pad_to_multiple_of 8, pad_token </s> (deprecated)', cfg: { pad_to_multiple_of: 8, pad_token: '</s>' } },
  {
    name: 'assistant_only_loss, multi-turn messages',
    cfg: {
      model_name_or_path: model('llama', { chatTemplate: CHAT_GEN }),
      dataset: turns('turns8.jsonl', 8),
      assistant_only_loss: true,
    },
  },
  {
    name: 'assistant_only_loss, conversational prompt-completion (multi-turn prompt)',
    cfg: {
      model_name_or_path: model('llama', { chatTemplate: CHAT_GEN }),
      dataset: pcChat('pcchat8.jsonl', 8),
      assistant_only_loss: true,
    },
  },
  {
    name: 'assistant_only_loss with completion_only_loss false (prompt assistant turns count)',
    cfg: {
      model_name_or_path: model('llama', { chatTemplate: CHAT_GEN }),
      dataset: pcChat('pcchat8.jsonl', 8),
      assistant_only_loss: true,
      completion_only_loss: false,
    },
  },
  { name: 'eos_token "." (completions ending with it get none)', cfg: { eos_token: '.' } },
  {
    name: 'loss_type dft, accumulation 2 x 2, eval',
    cfg: {
      loss_type: 'dft',
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 2,
      eval_dataset: pc('evalpc6.jsonl', 6, 100),
      eval_steps: 2,
      per_device_eval_batch_size: 4,
    },
  },
  { name: 'loss_type nll', cfg: { loss_type: 'nll' } },
  { name: 'max_length 12, truncation_mode keep_end', cfg: { max_length: 12, truncation_mode: 'keep_end' } },
  {
    name: 'chat_template_path (a .jinja file), assistant_only_loss',
    cfg: {
      model_name_or_path: model('llama'),
      chat_template_path: writeText('gen.jinja', CHAT_GEN),
      dataset: turns('turns8.jsonl', 8),
      assistant_only_loss: true,
    },
  },
  {
    name: 'shuffle_dataset (numpy order), with an eval split',
    cfg: {
      shuffle_dataset: true,
      seed: 7,
      per_device_train_batch_size: 2,
      dataset: pc('pc16.jsonl', 16),
      eval_dataset: pc('evalpc6.jsonl', 6, 100),
      eval_steps: 2,
      per_device_eval_batch_size: 4,
    },
  },
  {
    name: 'shuffle_dataset with packing bfd (before and after packing)',
    cfg: {
      shuffle_dataset: true,
      packing: true,
      max_length: 40,
      per_device_train_batch_size: 2,
      dataset: pc('pc16.jsonl', 16),
    },
  },
];

const results = new Map<string, Diff>();

before(
  async () => {
    if (!avail.ok) return;
    await initEngine({ device: 'cpu' });
    const jobs: Job[] = [];
    const ts: Record<string, number>[][] = [];
    for (const [i, c] of CASES.entries()) {
      const both = { ...BASE(), ...c.cfg };
      const cfg = {
        ...defaultsOf({ ...COMMON_OPTIONS, ...SFT_OPTIONS }),
        device: 'cpu',
        save_steps: 0,
        ...both,
        ...frozenOptions(both),
        output_dir: join(root, `ts-${i}`),
      } as SftConfig;
      try {
        await runSft(cfg, { quiet: true, log: () => {} });
        ts.push(readMetrics(cfg.output_dir));
      } catch (e) {
        ts.push([{ error: String((e as Error).message) } as unknown as Record<string, number>]);
      }
      jobs.push({ config: both, out: join(root, `trl-${i}.jsonl`) });
    }
    const ref = await runTrl(root, 'sft', jobs);
    CASES.forEach((c, i) => results.set(c.name, compareHistories(ref[i], ts[i])));
  },
  { timeout: 600_000 },
);

parityTests(
  'TRL 1.13 SFT parity',
  CASES.map((c) => c.name),
  results,
  avail,
);
