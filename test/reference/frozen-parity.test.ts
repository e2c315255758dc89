// TRL 1.13 parity with 16-bit frozen weights: tsdpo with frozen_dtype bfloat16 (the reference and a
// LoRA base kept in bf16, computed in f32 over the exactly widened values) against TRL on the same
// frozen weights rounded to bf16 and back to f32 (trl_run.py --round_frozen_bf16). The two runs are
// one computation, so the suites' tolerances hold: 1e-4 (2e-4 for GRPO / RLOO, as rl.test.ts).
// A representative subset of the suites: DPO full fine-tuning with a separate reference, the default
// reference (a bf16 copy of the f32 policy) and a precomputed one; DPO, KTO, SFT, GRPO and RLOO under
// LoRA (base frozen); llama, gemma3, gpt2 and qwen3 (the last three with tied embeddings).
// Each case is also run on TRL with float32 frozen weights, which must fail the same comparison: the
// comparison sees the rounding. Reference-free losses must not change at all.
// TSDPO_PARITY_FROZEN=bfloat16 runs every case of dpo/kto/sft/rl.test.ts this way (harness.ts).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/load.js';
import { newAdapter, saveAdapter } from '../../src/models/lora.js';
import { GRPO_OPTIONS, RLOO_OPTIONS, type GrpoConfig, type RlooConfig } from '../../src/rl/grpo-config.js';
import { runGrpo, runRloo } from '../../src/rl/grpo-run.js';
import {
  COMMON_OPTIONS,
  defaultsOf,
  DPO_OPTIONS,
  SFT_OPTIONS,
  type DpoConfig,
  type SftConfig,
} from '../../src/train/config.js';
import { KTO_OPTIONS, type KtoConfig } from '../../src/train/kto.js';
import { runKto } from '../../src/train/kto-run.js';
import { runDpo, runSft } from '../../src/train/run.js';
import { readMetrics } from '../../src/train/trainer.js';
import { encodePrompt } from '../../src/data/tokenize.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { tempDir } from '../helpers/assets.js';
import {
  compareHistories,
  HF_TINY,
  NOT_COMPARED,
  preferenceRows,
  referenceAvailable,
  runTrl,
  tinyFamily,
  writeRows,
  type Diff,
  type Job,
} from './harness.js';

NOT_COMPARED.step_time = 'wall-clock time of a step (TRL GRPO / RLOO)';

const avail = referenceAvailable();
const skip = avail.ok ? false : avail.why;
const root = tempDir('tsdpo-ref-frozen-');

type Trainer = 'dpo' | 'kto' | 'sft' | 'grpo' | 'rloo';
interface Case {
  name: string;
  trainer: Trainer;
  /** Options on top of the trainer's base for both sides (tsdpo's names). */
  cfg: Record<string, unknown>;
  /** One side only: tsdpo's new adapter is TRL's saved copy of it (same init; its "ref" copy is the base). */
  ts?: Record<string, unknown>;
  trl?: Record<string, unknown>;
}

const model = (family: string, which: 'policy' | 'reference' = 'policy'): string => tinyFamily(root, family, { which });
const REF = (family: string) => ({ ref_model: model(family, 'reference') });
const LORA = { adapter: join(HF_TINY, 'llama', 'lora'), learning_rate: 1e-2 };
/** A new adapter as --use_peft makes it (r 4, alpha 8, no dropout), and TRL's start: the same weights saved. */
const FRESH = { r: 4, alpha: 8, seed: 42 };
const freshDir = (family: string): string => join(root, `fresh-lora-${family}`);
const NEW_LORA = (family: string) => ({
  cfg: { model_name_or_path: model(family), learning_rate: 1e-2, lora_dropout: 0 },
  ts: { use_peft: true, lora_r: FRESH.r, lora_alpha: FRESH.alpha },
  trl: { adapter: freshDir(family) },
});
async function saveFreshAdapter(family: string): Promise<void> {
  const m = loadModel(model(family));
  newAdapter(m, { r: FRESH.r, alpha: FRESH.alpha, targetModules: [], dropout: 0, seed: FRESH.seed });
  await saveAdapter(m, freshDir(family), model(family));
}

const pairs = (name: string, n: number): string => writeRows(root, name, preferenceRows(n));
const unpaired = (name: string, n: number): string =>
  writeRows(
    root,
    name,
    preferenceRows(n).map((r, i) => ({ prompt: r.prompt, completion: i % 2 ? r.rejected : r.chosen, label: !(i % 2) })),
  );
const promptCompletion = (name: string, n: number): string =>
  writeRows(
    root,
    name,
    preferenceRows(n).map((r) => ({ prompt: r.prompt, completion: r.chosen })),
  );

/** 4 steps of 4 examples, logged each step, a rate that moves the tiny models (as dpo/kto/sft.test.ts). */
const TRAIN = {
  learning_rate: 1e-3,
  max_steps: 4,
  per_device_train_batch_size: 4,
  logging_steps: 1,
  lr_scheduler_type: 'linear',
  seed: 42,
  max_grad_norm: 1,
};
const BASE: Record<'dpo' | 'kto' | 'sft', () => Record<string, unknown>> = {
  dpo: () => ({ ...TRAIN, model_name_or_path: model('llama'), dataset: pairs('pairs8.jsonl', 8) }),
  kto: () => ({ ...TRAIN, model_name_or_path: model('llama'), dataset: unpaired('unpaired8.jsonl', 8) }),
  sft: () => ({ ...TRAIN, model_name_or_path: model('llama'), dataset: promptCompletion('pc8.jsonl', 8) }),
};

// Fixed completions for GRPO / RLOO (rl.test.ts's scheme: sampling cannot match across engines).
const G = 4,
  EOS = 2;
const PROMPTS = ['The movie:', 'This film', 'Acting'];
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
const REWARD_MODULE = `export default function idsum(prompts, completions, extra) { return extra.completion_ids.map((ids) => (ids.reduce((a, b) => a + b, 0) % 13) / 13); }
`;
const RL_BASE = () => ({
  dataset: writeRows(
    root,
    'prompts.jsonl',
    PROMPTS.map((prompt) => ({ prompt })),
  ),
  optim: 'sgd',
  learning_rate: 0.5,
  max_steps: 2,
  per_device_train_batch_size: 12,
  num_generations: G,
  max_completion_length: 6,
  logging_steps: 1,
  seed: 42,
  max_grad_norm: 1,
});

const CASES: Case[] = [
  { name: 'dpo sigmoid, separate reference (llama)', trainer: 'dpo', cfg: REF('llama') },
  {
    name: 'dpo ipo, the default reference: a bf16 copy of the f32 policy (gemma3, tied embeddings)',
    trainer: 'dpo',
    cfg: { model_name_or_path: model('gemma3'), loss_type: ['ipo'] },
  },
  {
    name: 'dpo hinge, separate reference, precompute_ref_log_probs (gpt2, tied embeddings)',
    trainer: 'dpo',
    cfg: { model_name_or_path: model('gpt2'), ...REF('gpt2'), loss_type: ['hinge'], precompute_ref_log_probs: true },
  },
  {
    name: 'dpo bco_pair + sft, separate reference (gemma3)',
    trainer: 'dpo',
    cfg: {
      model_name_or_path: model('gemma3'),
      ...REF('gemma3'),
      loss_type: ['bco_pair', 'sft'],
      loss_weights: [1, 0.5],
    },
  },
  { name: 'dpo, saved LoRA adapter (llama; reference: its frozen copy on the bf16 base)', trainer: 'dpo', cfg: LORA },
  {
    name: 'dpo, new LoRA adapter (qwen3; reference: the bf16 base, adapter off)',
    trainer: 'dpo',
    ...NEW_LORA('qwen3'),
  },
  {
    name: 'kto, separate reference (gemma3)',
    trainer: 'kto',
    cfg: { model_name_or_path: model('gemma3'), ...REF('gemma3') },
  },
  { name: 'kto, default reference (gpt2)', trainer: 'kto', cfg: { model_name_or_path: model('gpt2') } },
  { name: 'kto, new LoRA adapter (llama)', trainer: 'kto', ...NEW_LORA('llama') },
  { name: 'sft, saved LoRA adapter (llama)', trainer: 'sft', cfg: LORA },
  { name: 'sft, new LoRA adapter (gemma3)', trainer: 'sft', ...NEW_LORA('gemma3') },
  {
    name: 'grpo beta 0.1, saved LoRA adapter (llama; reference: its frozen copy)',
    trainer: 'grpo',
    cfg: { adapter: join(HF_TINY, 'llama', 'lora'), beta: 0.1, loss_type: 'grpo' },
  },
  {
    name: 'rloo beta 0.05, new LoRA adapter (gemma3; reference: the bf16 base)',
    trainer: 'rloo',
    cfg: { model_name_or_path: model('gemma3'), beta: 0.05, lora_dropout: 0 },
    ts: { use_peft: true, lora_r: FRESH.r, lora_alpha: FRESH.alpha },
    trl: { adapter: freshDir('gemma3') },
  },
];

/** tsdpo's tsdpo-only reference-free losses: frozen_dtype changes nothing (no model is frozen). */
const REFERENCE_FREE = ['simpo', 'reference_free'];

const isRl = (t: Trainer): t is 'grpo' | 'rloo' => t === 'grpo' || t === 'rloo';
type Result = Diff & { params?: number };
const results = new Map<string, Result>();
/** Each case against TRL with float32 frozen weights: the comparison must fail (the control). */
const controls = new Map<string, Result>();
const cacheCase: { result?: Diff } = {};
const refFree = new Map<string, { f32: Record<string, number>[]; bf16: Record<string, number>[] }>();

/** Runs one case on tsdpo; its metrics.jsonl lines, or one {error} line. */
async function runTsdpo(c: Case, both: Record<string, unknown>, dir: string, extra: Record<string, unknown> = {}) {
  const opts = { quiet: true, log: () => {} };
  // One thread throughout: the engine is made once (rl.test.ts runs so too).
  const common = { device: 'cpu', threads: 1, save_steps: 0, ...both, ...c.ts, output_dir: dir, ...extra };
  try {
    if (c.trainer === 'dpo')
      await runDpo({ ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }), ...common } as DpoConfig, opts);
    else if (c.trainer === 'kto')
      await runKto({ ...defaultsOf({ ...COMMON_OPTIONS, ...KTO_OPTIONS }), ...common } as KtoConfig, opts);
    else if (c.trainer === 'sft')
      await runSft({ ...defaultsOf({ ...COMMON_OPTIONS, ...SFT_OPTIONS }), ...common } as SftConfig, opts);
    else {
      const seen = new Map<number, number>();
      const rollout = async (_ids: number[][], promptIndex: number[]): Promise<number[][]> => {
        seen.clear();
        return promptIndex.map((p) => {
          const k = seen.get(p) ?? 0;
          seen.set(p, k + 1);
          return COMPLETIONS[p][k];
        });
      };
      const cfg = { ...common, reward_funcs: [join(root, 'idsum.mjs')] };
      const rl = { ...opts, rollout };
      if (c.trainer === 'grpo') await runGrpo({ ...defaultsOf(GRPO_OPTIONS), ...cfg } as GrpoConfig, rl);
      else await runRloo({ ...defaultsOf(RLOO_OPTIONS), ...cfg } as RlooConfig, rl);
    }
    return readMetrics(dir);
  } catch (e) {
    return [{ error: String((e as Error).stack) } as unknown as Record<string, number>];
  }
}

/** Largest |difference| between TRL's trained parameters (debug_out) and tsdpo's saved adapter. */
function paramDiff(debugOut: string, dir: string): number {
  const want = (JSON.parse(readFileSync(debugOut, 'utf8')) as { params: Record<string, number[]> }).params;
  let max = 0,
    compared = 0;
  for (const [name, t] of readSafetensors(join(dir, 'adapter_model.safetensors')).tensors) {
    const w = want[name.replace(/\.(lora_[AB])\.weight$/, '.$1.default.weight')];
    if (!w) continue;
    const got = t.toFloat32();
    compared++;
    for (let i = 0; i < w.length; i++) max = Math.max(max, Math.abs(w[i] - got[i]));
  }
  assert.ok(compared > 0, `${dir}: no adapter parameter matched TRL's names`);
  return max;
}

before(
  async () => {
    if (!avail.ok) return;
    await initEngine({ device: 'cpu', threads: 1 });
    for (const f of ['llama', 'gemma3', 'qwen3']) await saveFreshAdapter(f);
    writeFileSync(join(root, 'idsum.mjs'), REWARD_MODULE);
    const jobs: Job[] = [];
    const ts: Record<string, number>[][] = [];
    for (const [i, c] of CASES.entries()) {
      let both: Record<string, unknown>;
      let trlOnly: Record<string, unknown> = {};
      if (isRl(c.trainer)) {
        both = { ...RL_BASE(), model_name_or_path: model('llama'), ...c.cfg };
        const tok = loadTokenizer(both.model_name_or_path as string);
        const completions = Object.fromEntries(PROMPTS.map((p, k) => [encodePrompt(tok, p).join(','), COMPLETIONS[k]]));
        trlOnly = { rewards: ['idsum'], completions, debug_out: join(root, `debug-${i}.json`) };
      } else both = { ...BASE[c.trainer](), ...c.cfg };
      ts.push(await runTsdpo(c, both, join(root, `ts-${i}`), { frozen_dtype: 'bfloat16' }));
      const config = { ...both, ...c.trl, ...trlOnly };
      jobs.push({ trainer: c.trainer, config, out: join(root, `trl-${i}.jsonl`), round_frozen_bf16: true });
      const f32 = isRl(c.trainer) ? { ...config, debug_out: join(root, `debug-${i}-f32.json`) } : config;
      jobs.push({ trainer: c.trainer, config: f32, out: join(root, `trl-${i}-f32.jsonl`), round_frozen_bf16: false });
    }
    // Reference-free losses: the same run with frozen_dtype float32 and bfloat16.
    for (const l of REFERENCE_FREE) {
      const c: Case = { name: l, trainer: 'dpo', cfg: { loss_type: [l] } };
      const both = { ...BASE.dpo(), ...c.cfg };
      refFree.set(l, {
        f32: await runTsdpo(c, both, join(root, `ts-${l}-f32`), { frozen_dtype: 'float32' }),
        bf16: await runTsdpo(c, both, join(root, `ts-${l}-bf16`), { frozen_dtype: 'bfloat16' }),
      });
    }
    // The reference cache (see the test at the end): a float32 run, then a bfloat16 one.
    const cached = { ...BASE.dpo(), ...REF('llama'), precompute_ref_log_probs: true, max_steps: 2 };
    const cacheRun = { name: 'cache', trainer: 'dpo', cfg: {} } as const;
    await runTsdpo(cacheRun, cached, join(root, 'ts-cache-f32'), { frozen_dtype: 'float32' });
    const cacheTs = await runTsdpo(cacheRun, cached, join(root, 'ts-cache-bf16'), { frozen_dtype: 'bfloat16' });
    jobs.push({ trainer: 'dpo', config: cached, out: join(root, 'trl-cache.jsonl'), round_frozen_bf16: true });
    const trl = await runTrl(root, 'dpo', jobs);
    const byOut = new Map(jobs.map((j, k) => [j.out, trl[k]]));
    const compare = (i: number, c: Case, which: '' | '-f32'): Result => {
      const d: Result = compareHistories(
        byOut.get(join(root, `trl-${i}${which}.jsonl`))!,
        ts[i],
        isRl(c.trainer) ? 2e-4 : 1e-4,
      );
      const debug = join(root, `debug-${i}${which}.json`);
      if (isRl(c.trainer) && existsSync(debug) && !('error' in ts[i][0]))
        d.params = paramDiff(debug, join(root, `ts-${i}`));
      return d;
    };
    for (const [i, c] of CASES.entries()) {
      results.set(c.name, compare(i, c, ''));
      controls.set(c.name, compare(i, c, '-f32'));
    }
    cacheCase.result = compareHistories(byOut.get(join(root, 'trl-cache.jsonl'))!, cacheTs);
  },
  { timeout: 900_000 },
);

const short = (m: Record<string, number>): string =>
  JSON.stringify(m, (_, v) => (typeof v === 'number' ? Number(v.toExponential(1)) : v));

for (const c of CASES) {
  test(`frozen_dtype bfloat16 vs TRL 1.13 on bf16-rounded frozen weights: ${c.name}`, { skip }, () => {
    const r = results.get(c.name);
    assert.ok(r, 'the side-by-side runs did not finish');
    process.stderr.write(
      `# ${c.name}: max diff ${short({ ...r.max, ...(r.params === undefined ? {} : { params: r.params }) })}\n`,
    );
    assert.deepEqual(
      r.problems,
      [],
      `tsdpo (frozen_dtype bfloat16) differs from TRL (${c.name}):\n${r.problems.slice(0, 20).join('\n')}`,
    );
    if (r.params !== undefined)
      assert.ok(r.params < 1e-4, `adapter parameters after training differ by up to ${r.params}`);
  });
}

for (const { name } of CASES) {
  test(`control: TRL with float32 frozen weights is told apart from frozen_dtype bfloat16: ${name}`, { skip }, () => {
    const r = controls.get(name);
    assert.ok(r, 'the control run did not finish');
    assert.ok(
      !r.problems.some((p) => p.startsWith('TRL failed') || p.startsWith('tsdpo failed')),
      r.problems.join('\n'),
    );
    const moved = Object.entries({ ...r.max, ...(r.params === undefined ? {} : { params: r.params }) }).sort(
      (a, b) => b[1] - a[1],
    );
    process.stderr.write(
      `# control ${name}: largest differences to unrounded TRL ${short(Object.fromEntries(moved.slice(0, 4)))}\n`,
    );
    assert.ok(
      r.problems.length > 0 || (r.params ?? 0) >= 1e-4,
      'tsdpo with frozen_dtype bfloat16 matched TRL with float32 frozen weights within the tolerance: the comparison cannot see the rounding (or tsdpo did not keep the frozen weights in bf16)',
    );
  });
}

for (const l of REFERENCE_FREE) {
  test(`loss_type ${l} (no reference) is the same run under frozen_dtype bfloat16`, { skip }, () => {
    const r = refFree.get(l);
    assert.ok(r, 'the runs did not finish');
    assert.ok(!('error' in r.f32[0]) && !('error' in r.bf16[0]), JSON.stringify([r.f32[0], r.bf16[0]]));
    const strip = (ls: Record<string, number>[]) =>
      ls.map((x) => Object.fromEntries(Object.entries(x).filter(([k]) => !/runtime|per_second|step_time/.test(k))));
    assert.deepEqual(
      strip(r.bf16),
      strip(r.f32),
      `${l}: frozen_dtype bfloat16 changed a run that has no frozen weights`,
    );
  });
}

// The cache of precompute_ref_log_probs (src/train/run.ts refCacheFile, also used by kto-run.ts) is
// keyed on frozen_dtype too: a bfloat16 run after a float32 run of the same model and data must not
// reuse the float32 reference log-probs (it did once).
test(
  'precompute_ref_log_probs after a float32 run of the same model and data: parity with TRL on bf16-rounded weights',
  { skip },
  () => {
    const r = cacheCase.result;
    assert.ok(r, 'the runs did not finish');
    assert.deepEqual(r.problems, [], r.problems.join('\n'));
  },
);
