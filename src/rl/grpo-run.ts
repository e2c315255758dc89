// `tsdpo grpo` and `tsdpo rloo` on the run skeleton (train/run.ts runMethod: engine, tokenizer, model,
// LoRA, the shared training loop, the final model or adapter in output_dir, --memory_report): the
// prompts, the reward functions, the reference (only with beta != 0) and the RL objective.
import { padIdFor } from '../data/collate.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import { COMMON_OPTIONS, defaultsOf } from '../train/config.js';
import { runMethod, type RunOptions, type RunSummary } from '../train/run.js';
import type { GrpoConfig, RlConfig, RlooConfig } from './grpo-config.js';
import { RlObjective, type RlParts, type RlReference, type Rollout } from './objective.js';
import { loadPrompts } from './prompts.js';
import { loadRewardFuncs } from './rewards.js';

/** How a run reports (log lines, progress, every metrics line and step), and the parity tests' hooks. */
export interface RlRunOptions extends RunOptions {
  /** Replaces sampling (parity tests feed fixed completions). */
  rollout?: Rollout;
  onMicro?: RlParts['onMicro'];
  /** Rows of logits the LM head makes at once (tests force small chunks; default 256 MiB of them). */
  headChunkRows?: number;
}

async function runRl(method: 'grpo' | 'rloo', given: GrpoConfig | RlooConfig, opts: RlRunOptions): Promise<RunSummary> {
  const cfg = { ...defaultsOf(COMMON_OPTIONS), ...given } as RlConfig;
  if (!(cfg.temperature > 0)) throw new Error(`--temperature must be > 0, got ${cfg.temperature}`);
  if (!(cfg.top_p > 0 && cfg.top_p <= 1)) throw new Error(`--top_p must be in (0, 1], got ${cfg.top_p}`);
  if (cfg.max_completion_length < 1)
    throw new Error(`--max_completion_length must be >= 1, got ${cfg.max_completion_length}`);
  if (cfg.reward_clip_range && cfg.reward_clip_range.length !== 0 && cfg.reward_clip_range.length !== 2) {
    throw new Error(`--reward_clip_range takes two numbers min,max, got ${cfg.reward_clip_range.join(',')}`);
  }
  const rewards = await loadRewardFuncs(cfg.reward_funcs, cfg.reward_weights);
  const { rollout, onMicro, headChunkRows, ...runOpts } = opts;
  return runMethod(cfg, runOpts, {
    command: method,
    // Prompts only: the data is the train split's prompts, and there is no eval split.
    load: async (path, _split, s) => {
      const prompts = await loadPrompts(path, s.tok, cfg.prompt_column);
      return { examples: prompts, report: { prompts: prompts.length } };
    },
    noEval: true,
    unit: 'prompts',
    describe: (_name, r) =>
      `prompts: ${r.prompts} from ${cfg.dataset}; rewards: ${rewards.funcs.map((f, i) => `${f.name} x ${rewards.weights[i]}`).join(', ')}`,
    objective: async (s, train) => {
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
        prompts: train.examples,
        rewards,
        padId: padIdFor(s.tok),
        loraDropout: s.loraDropout,
        rollout,
        onMicro,
        headChunkRows,
        saveWeights: s.saveWeights,
        loadWeights: s.loadWeights,
      });
      return { objective, refModel: reference.kind === 'model' ? reference.model : null };
    },
  });
}

export const runGrpo = (cfg: GrpoConfig, opts: RlRunOptions = {}): Promise<RunSummary> => runRl('grpo', cfg, opts);
export const runRloo = (cfg: RlooConfig, opts: RlRunOptions = {}): Promise<RunSummary> => runRl('rloo', cfg, opts);
