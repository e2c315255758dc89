// Settings of `tsdpo demo`: every option documented once, on its default; --quick swaps in the
// smaller QUICK_DEMO values (flags given on the command line still win).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ConfigOf, OptionSpec } from '../train/config.js';

export const DEMO_OPTIONS = {
  model: {
    type: 'string',
    default: '',
    help: 'starting (= reference) model folder; default: the committed assets/demo-model',
  },
  output: {
    type: 'string',
    default: 'demo-output',
    help: 'folder for report.html, frontier.svg, summary.json, pairs.jsonl and the runs',
  },
  seed: { type: 'int', default: 0, help: 'seed of prompt choice, sampling and training order' },
  train_prompts: {
    type: 'int',
    default: 0,
    help: 'training review prefixes (train split of train_sets) to sample pairs from; 0 = all (2,359)',
  },
  train_sets: {
    type: 'list',
    default: ['imdb', 'amazon', 'yelp'],
    help: "review sets the training prefixes come from (held-out prefixes are IMDb's, as in the paper)",
  },
  samples_per_prompt: {
    type: 'int',
    default: 4,
    help: 'completions sampled per training prompt; best vs worst by reward is a pair',
  },
  max_new_tokens: { type: 'int', default: 16, help: 'longest completion in tokens (stops earlier at <|endoftext|>)' },
  eval_prompts: {
    type: 'int',
    default: 96,
    help: 'held-out IMDb review prefixes every policy is evaluated on (98 exist)',
  },
  eval_samples: {
    type: 'int',
    default: 4,
    help: 'completions per held-out prompt for the reward and KL of each trained policy',
  },
  ref_samples: {
    type: 'int',
    default: 16,
    help: 'completions per held-out prompt from the starting model (its reward, and best-of-N)',
  },
  best_of: {
    type: 'list',
    default: ['2', '4', '8'],
    help: 'N of the best-of-N baselines (at most ref_samples; ref_samples / N >= 2 keeps the estimate close)',
  },
  betas: { type: 'list', default: ['0.05', '0.1', '0.5'], help: 'DPO beta values, one run each' },
  learning_rate: { type: 'number', default: 2e-4, help: 'AdamW learning rate of the DPO and Preferred-FT runs' },
  steps: { type: 'int', default: 60, help: 'optimizer steps per run' },
  batch_size: { type: 'int', default: 32, help: 'pairs (DPO) or chosen completions (Preferred-FT) per step' },
  checkpoints: {
    type: 'int',
    default: 3,
    help: 'evaluations per run, evenly spaced (each is a point on the frontier chart)',
  },
  unlikelihood_alphas: {
    type: 'list',
    default: ['0.05', '0.2'],
    help:
      'Unlikelihood baseline: weights alpha of the -log p(rejected) ' +
      'term, one run each (same steps and learning rate as DPO)',
  },
  rm_epochs: {
    type: 'number',
    default: 2,
    help:
      'reward model: passes over all 6 pairs of the 4 samples of ' +
      'each training prompt (labelled by the ground-truth reward)',
  },
  rm_prompts: {
    type: 'int',
    default: 1024,
    help:
      'reward model: training prompts whose samples it is trained on (the first ' +
      'of the seeded order; 0 = all); a tenth of them choose the checkpoint',
  },
  rm_learning_rate: {
    type: 'number',
    default: 1e-3,
    help: 'reward model: AdamW learning rate (linear decay); the weights of the best held-out evaluation are kept',
  },
  ppo_kl_coefs: {
    type: 'list',
    default: ['0.01', '0.05', '0.2'],
    help:
      'PPO and PPO-GT: KL coefficients (the beta of the RLHF ' +
      'objective), one run of each per value; empty = no PPO runs',
  },
  ppo_updates: {
    type: 'int',
    default: 20,
    help: 'PPO updates per run (each samples ppo_batch rollouts at temperature 1, then ppo_epochs passes over them)',
  },
  ppo_batch: { type: 'int', default: 32, help: 'PPO rollouts per update (from the training prompts)' },
  ppo_epochs: {
    type: 'int',
    default: 2,
    help: 'PPO epochs per update (passes of clipped policy + value updates over its rollouts, one mini-batch each)',
  },
  ppo_learning_rate: {
    type: 'number',
    default: 3e-4,
    help: 'PPO: AdamW learning rate of the policy and the value model (constant)',
  },
  temperatures: {
    type: 'list',
    default: ['0.25', '0.5', '0.75', '1'],
    help:
      'sampling temperatures of the win rate against the chosen completions ' +
      "(DPO, PPO, Preferred-FT); the first and 1 also over DPO's training",
  },
  threads: { type: 'int', default: 0, help: 'CPU threads (0 = all cores)' },
  quick: {
    type: 'bool',
    default: false,
    help: 'a smaller run (one strength per method) with the QUICK settings, for CI',
  },
  json: { type: 'bool', default: false, help: 'print one JSON summary line on stdout at the end' },
  quiet: { type: 'bool', default: false, help: 'no progress output on stderr' },
} as const satisfies Record<string, OptionSpec>;

export type DemoConfig = ConfigOf<typeof DEMO_OPTIONS>;

/** What --quick changes: one strength per method and smaller samples, same pipeline. */
export const QUICK_DEMO: Partial<DemoConfig> = {
  train_prompts: 512,
  samples_per_prompt: 4,
  max_new_tokens: 12,
  eval_prompts: 40,
  eval_samples: 4,
  ref_samples: 8,
  best_of: ['2', '4'],
  betas: ['0.1'],
  learning_rate: 5e-4,
  steps: 24,
  batch_size: 16,
  checkpoints: 2,
  unlikelihood_alphas: ['0.1'],
  rm_epochs: 1,
  rm_prompts: 384,
  ppo_kl_coefs: ['0.05'],
  ppo_updates: 8,
};

/** DEMO_OPTIONS with the defaults --quick uses (for resolving flags over them). */
export function demoSpecs(quick: boolean): Record<string, OptionSpec> {
  if (!quick) return DEMO_OPTIONS;
  const out: Record<string, OptionSpec> = {};
  for (const [k, s] of Object.entries(DEMO_OPTIONS)) {
    const q = (QUICK_DEMO as Record<string, unknown>)[k];
    out[k] = q === undefined ? s : { ...s, default: q };
  }
  return out;
}

/** The committed demo checkpoint (assets/demo-model/ at the package root). */
export function defaultDemoModel(): string {
  // This file is dist/src/demo/options.js once compiled: three levels below the package root.
  const dir = fileURLToPath(new URL('../../../assets/demo-model', import.meta.url));
  if (!existsSync(dir))
    throw new Error(
      `tsdpo demo: the demo checkpoint ${dir} is missing (it is ` +
        `committed in the repository; pass --model DIR to use another)`,
    );
  return dir;
}

/** The numbers of a config, checked (list options parsed); throws naming the option. */
export function checkDemoConfig(c: DemoConfig): {
  betas: number[];
  bestOf: number[];
  alphas: number[];
  klCoefs: number[];
  temperatures: number[];
} {
  const bad = (k: string, v: unknown, hint: string) =>
    new Error(`tsdpo demo: --${k} is ${JSON.stringify(v)} (${hint})`);
  if (!(c.train_prompts >= 0)) throw bad('train_prompts', c.train_prompts, '0 (all) or more');
  if (!(c.rm_prompts >= 0)) throw bad('rm_prompts', c.rm_prompts, '0 (all) or more');
  for (const s of c.train_sets)
    if (!['imdb', 'amazon', 'yelp'].includes(s)) throw bad('train_sets', c.train_sets, 'imdb, amazon and/or yelp');
  for (const k of [
    'eval_prompts',
    'eval_samples',
    'ref_samples',
    'max_new_tokens',
    'steps',
    'batch_size',
    'checkpoints',
  ] as const) {
    if (!(c[k] >= 1)) throw bad(k, c[k], 'at least 1');
  }
  if (c.samples_per_prompt < 2)
    throw bad('samples_per_prompt', c.samples_per_prompt, 'at least 2: a pair needs two completions');
  const betas = c.betas.map(Number);
  if (betas.length === 0 || betas.some((b) => !(b > 0)))
    throw bad('betas', c.betas, 'positive numbers, e.g. 0.05,0.1,0.5');
  const bestOf = c.best_of.map(Number);
  if (bestOf.some((n) => !(Number.isInteger(n) && n >= 2 && n <= c.ref_samples))) {
    throw bad('best_of', c.best_of, `integers from 2 to ref_samples (${c.ref_samples})`);
  }
  for (const k of ['learning_rate', 'rm_learning_rate', 'ppo_learning_rate', 'rm_epochs'] as const)
    if (!(c[k] > 0)) throw bad(k, c[k], 'positive');
  const alphas = c.unlikelihood_alphas.filter((x) => x !== '').map(Number);
  if (alphas.some((a) => !(a >= 0)))
    throw bad('unlikelihood_alphas', c.unlikelihood_alphas, 'numbers >= 0, e.g. 0.05,0.2');
  const klCoefs = c.ppo_kl_coefs.filter((x) => x !== '').map(Number);
  if (klCoefs.some((k) => !(k >= 0))) throw bad('ppo_kl_coefs', c.ppo_kl_coefs, 'numbers >= 0, e.g. 0.05,0.1,0.2');
  if (!(c.ppo_updates >= 1)) throw bad('ppo_updates', c.ppo_updates, 'at least 1');
  if (!(c.ppo_batch >= 1)) throw bad('ppo_batch', c.ppo_batch, 'at least 1');
  if (!(c.ppo_epochs >= 1)) throw bad('ppo_epochs', c.ppo_epochs, 'at least 1');
  if (klCoefs.length > 0 && c.ppo_batch > (c.train_prompts || Infinity))
    throw bad('ppo_batch', c.ppo_batch, `at most train_prompts (${c.train_prompts})`);
  const temperatures = c.temperatures.map(Number);
  if (temperatures.length === 0 || temperatures.some((t) => !(t > 0)))
    throw bad('temperatures', c.temperatures, 'positive numbers, e.g. 0.25,0.5,0.75,1');
  return { betas, bestOf, alphas, klCoefs, temperatures };
}
