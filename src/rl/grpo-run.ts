// `tsdpo grpo` and `tsdpo rloo` end to end: the shared setup (engine, tokenizer, model, LoRA), the
// prompts, the reward functions, the reference (only with beta != 0), the shared training loop, and
// the final model (or adapter) in output_dir.
import { padIdFor } from '../data/collate.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import { COMMON_OPTIONS, defaultsOf } from '../train/config.js';
import { finish, setup, type RunSummary } from '../train/run.js';
import { train as runTraining } from '../train/trainer.js';
import type { GrpoConfig, RlConfig, RlooConfig } from './grpo-config.js';
import { RlObjective, type RlParts, type RlReference, type Rollout } from './objective.js';
import { loadPrompts } from './prompts.js';
import { loadRewardFuncs } from './rewards.js';

type Log = (line: string) => void;

export interface RlRunOptions {
  log?: Log;
  quiet?: boolean;
  /** Replaces sampling (parity tests feed fixed completions). */
  rollout?: Rollout;
  onMicro?: RlParts['onMicro'];
}

async function runRl(method: 'grpo' | 'rloo', given: GrpoConfig | RlooConfig, opts: RlRunOptions): Promise<RunSummary> {
  const cfg = { ...defaultsOf(COMMON_OPTIONS), ...given } as RlConfig;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!(cfg.temperature > 0)) throw new Error(`--temperature must be > 0, got ${cfg.temperature}`);
  if (!(cfg.top_p > 0 && cfg.top_p <= 1)) throw new Error(`--top_p must be in (0, 1], got ${cfg.top_p}`);
  if (cfg.max_completion_length < 1)
    throw new Error(`--max_completion_length must be >= 1, got ${cfg.max_completion_length}`);
  if (cfg.reward_clip_range && cfg.reward_clip_range.length !== 0 && cfg.reward_clip_range.length !== 2) {
    throw new Error(`--reward_clip_range takes two numbers min,max, got ${cfg.reward_clip_range.join(',')}`);
  }
  const rewards = await loadRewardFuncs(cfg.reward_funcs, cfg.reward_weights);
  const s = await setup(cfg, log);
  const prompts = await loadPrompts(cfg.dataset, s.tok, cfg.prompt_column);
  log(
    `prompts: ${prompts.length} from ${cfg.dataset}; rewards: ${rewards.funcs.map((f, i) => `${f.name} x ${rewards.weights[i]}`).join(', ')}`,
  );
  // The reference (beta != 0), as TRL 1.13: a frozen copy of the model; with a new LoRA adapter the
  // base model (adapter off); with a saved adapter (--adapter) a frozen copy of that adapter.
  let reference: RlReference = { kind: 'none' };
  if (cfg.beta !== 0 && s.lora && !cfg.adapter) reference = { kind: 'adapter-off' };
  else if (cfg.beta !== 0) {
    const model = loadModel(cfg.model_name_or_path, { frozenDtype: s.frozenDtype });
    if (cfg.adapter) loadAdapter(model, cfg.adapter);
    reference = { kind: 'model', model };
  }
  const objective = new RlObjective({
    method,
    cfg,
    policy: s.policy,
    params: s.params,
    reference,
    tok: s.tok,
    prompts,
    rewards,
    padId: padIdFor(s.tok),
    loraDropout: s.loraDropout,
    rollout: opts.rollout,
    onMicro: opts.onMicro,
    saveWeights: s.saveWeights,
    loadWeights: s.loadWeights,
  });
  const result = await runTraining(cfg, objective, {
    log: opts.log,
    quiet: opts.quiet,
    record: { command: method, ...cfg },
  });
  if (!result.stopped) await finish(cfg, s);
  return { ...result, report: { prompts: prompts.length }, output: cfg.output_dir };
}

export const runGrpo = (cfg: GrpoConfig, opts: RlRunOptions = {}): Promise<RunSummary> => runRl('grpo', cfg, opts);
export const runRloo = (cfg: RlooConfig, opts: RlRunOptions = {}): Promise<RunSummary> => runRl('rloo', cfg, opts);
