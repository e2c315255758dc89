// Training a model already in memory on rows already in memory, with the configuration the CLI
// uses (TRL's names and defaults): DPO, SFT and KTO. The same parts and run skeleton as `tsdpo dpo`
// (train/methods.ts, train/skeleton.ts) without an output folder: nothing is written, the trained
// weights stay in the model, the metrics come as events. Works in browsers (no file access).
import type { DataReport } from '../data/pipeline.js';
import { getBackend } from '../core/backend.js';
import { trainAll } from '../models/build.js';
import { adapterOf, newAdapter } from '../models/adapter.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import {
  coerce,
  defaultsOf,
  DPO_SPECS,
  SFT_SPECS,
  type CommonConfig,
  type DpoConfig,
  type OptionSpec,
  type SftConfig,
} from '../train/config.js';
import { KTO_SPECS, type KtoConfig } from '../train/kto.js';
import { train as runLoop, type TrainResult } from '../train/loop.js';
import { frozenDtypeOf } from '../train/memory.js';
import { dpoMethod, ktoMethod, sftMethod, type ReferenceSource } from '../train/methods.js';
import { runSkeleton, type RowMethod, type Setup } from '../train/skeleton.js';
import { Run, type TrainEvent } from './events.js';

/** The training methods `train` runs in memory. */
export type Method = 'dpo' | 'sft' | 'kto';

/** The configuration of each method: TRL's option names (DPOConfig, SFTConfig, KTOConfig), as the CLI's flags. */
export interface MethodConfigs {
  dpo: DpoConfig;
  sft: SftConfig;
  kto: KtoConfig;
}

/** The option table (types, defaults, help) of each method. */
export const METHOD_OPTIONS: { readonly [M in Method]: Record<string, OptionSpec> } = {
  dpo: DPO_SPECS,
  sft: SFT_SPECS,
  kto: KTO_SPECS,
};

/** What `train` trains on. */
export interface TrainInputs<M extends Method> {
  /**
   * The policy: trained in place (all weights, or its LoRA adapter: one already attached, or a new one with use_peft).
   */
  model: CausalLM;
  tokenizer: TextTokenizer;
  /** Training rows, as in the CLI's data files (docs/data.md): e.g. {prompt, chosen, rejected} for DPO. */
  train: readonly unknown[];
  /** Held-out rows, evaluated every eval_steps (or logging_steps) with eval_* metrics. */
  eval?: readonly unknown[];
  /**
   * DPO / KTO: the reference model, as ref_model is for runTraining (a frozen model; its log-probs
   * computed before the first step with precompute_ref_log_probs). Default: the model before training,
   * through its log-probs computed once before the first step (the same numbers as a frozen copy, at
   * no extra memory); with a new LoRA adapter, the model with the adapter off.
   */
  reference?: CausalLM;
  /** Options with TRL's names; every other option keeps its default (`tsdpo <method> --help`). */
  config?: Partial<MethodConfigs[M]>;
}

/** A finished run: steps, every metrics line, the data reports; `stopped` says why a run ended early. */
export interface TrainSummary extends TrainResult {
  report: { train: DataReport; eval: DataReport | null };
}

/** The full configuration: defaults, then `given`, each value checked against its option's type and choices. */
export function resolveConfig<M extends Method>(method: M, given: Partial<MethodConfigs[M]> = {}): MethodConfigs[M] {
  const specs = METHOD_OPTIONS[method];
  const cfg = defaultsOf(specs) as Record<string, unknown>;
  for (const [key, value] of Object.entries(given)) {
    const spec = specs[key];
    if (!spec)
      throw new Error(
        `train('${method}'): unknown option '${key}' (the options are ` +
          `TRL's names: ${Object.keys(specs).slice(0, 6).join(', ')}, ...)`,
      );
    if (value !== undefined) cfg[key] = coerce(key, spec, value, `train('${method}')`);
  }
  return cfg as unknown as MethodConfigs[M];
}

/** Options of runs from files, and what takes their place in memory. */
const FILE_OPTIONS: Record<string, string> = {
  model_name_or_path: 'give the model (inputs.model)',
  dataset: 'give the rows (inputs.train)',
  eval_dataset: 'give the rows (inputs.eval)',
  output_dir: 'nothing is written (use runTraining for a run into a folder)',
  overwrite_output_dir: 'nothing is written',
  resume_from_checkpoint: 'there are no checkpoints (use runTraining)',
  adapter: 'attach it first (loadAdapter or adapterFromFiles)',
  ref_model: 'give the reference (inputs.reference)',
  device: 'call initEngine first',
  threads: 'call initEngine first',
  config: 'give the options themselves',
  shard: 'the parts of the reference pass are files (use runTraining)',
  chat_template_path: "give the tokenizer the template (chat_template.jinja among tokenizerFromFiles' files)",
};

/** The trained model in memory: its adapter, a new one (use_peft), or every weight; nothing is written. */
function inMemory(
  model: CausalLM,
  tok: TextTokenizer,
  cfg: CommonConfig & { disable_dropout?: boolean },
  log: (line: string) => void,
): Setup {
  model.gradientCheckpointing = cfg.gradient_checkpointing;
  const attached = adapterOf(model);
  const base = {
    policy: model,
    tok,
    frozenDtype: frozenDtypeOf(cfg, getBackend(), log),
    saveWeights: noFiles,
    loadWeights: noFiles,
    finalFiles: [],
  };
  if (attached || cfg.use_peft) {
    const info =
      attached ??
      newAdapter(model, {
        r: cfg.lora_r,
        alpha: cfg.lora_alpha,
        dropout: cfg.lora_dropout,
        seed: cfg.seed,
        targetModules:
          cfg.lora_target_modules.length === 1 && cfg.lora_target_modules[0] === 'all-linear'
            ? 'all-linear'
            : cfg.lora_target_modules,
      });
    const loraDropout = cfg.disable_dropout ? 0 : info.config.lora_dropout;
    return { ...base, params: info.params, lora: true, newLora: !attached, loraDropout };
  }
  return { ...base, params: trainAll(model), lora: false, newLora: false, loraDropout: 0 };
}

const noFiles = async (): Promise<never> => {
  throw new Error('train: in-memory runs write no checkpoints (use runTraining with an output_dir in Node)');
};

/**
 * The reference in memory: the model given, else the model before training through its log-probs
 * computed before the first step (with a new LoRA adapter and none given: the base, the adapter off).
 */
function memoryReference(given: CausalLM | undefined): ReferenceSource {
  return {
    separate: given !== undefined,
    owned: false,
    load: () => given ?? null,
    precompute: (key, _batchSize, compute) => compute(0, key.examples.length),
    stopsAfterPass: false,
    progress: (label, n, unit, log) => {
      log(`${label}: ${n} ${unit} under ${given ? 'the reference model' : 'the model before training'}`);
      return { update: () => {}, stop: () => {} };
    },
  };
}

/**
 * Trains `inputs.model` with `method` ('dpo', 'sft' or 'kto'). Returns at once; the run reports
 * log lines, steps and metrics as events (`for await (const e of run)`) and resolves to a summary
 * (`await run`). Call initEngine first.
 */
export function train<M extends Method>(method: M, inputs: TrainInputs<M>): Run<TrainEvent, TrainSummary> {
  return new Run<TrainEvent, TrainSummary>(async (emit) => {
    const log = (message: string): void => emit({ type: 'log', message });
    await Promise.resolve(); // let the caller subscribe before the first event
    for (const [key, instead] of Object.entries(FILE_OPTIONS)) {
      if (inputs.config && key in inputs.config)
        throw new Error(`train('${method}'): option ${key} belongs to runs from files; in memory, ${instead}`);
    }
    const cfg = { ...resolveConfig(method, inputs.config), output_dir: '' };
    if (method === 'dpo' && (cfg as DpoConfig).sync_ref_model && !inputs.reference)
      throw new Error('sync_ref_model: give the reference model (inputs.reference) to mix the policy into');
    const refs = memoryReference(inputs.reference);
    const parts = (
      method === 'dpo'
        ? dpoMethod(cfg as DpoConfig, refs)
        : method === 'sft'
          ? sftMethod(cfg as SftConfig)
          : ktoMethod(cfg as KtoConfig, refs)
    ) as RowMethod<{ examples: unknown[]; report: DataReport }>;
    parts.begin?.(log);
    const rows = (r: readonly unknown[], name: string, isEval: boolean) => async () =>
      parts.prepare([...r], inputs.tokenizer, { name, isEval });
    const { result, report } = await runSkeleton(
      cfg,
      {
        log,
        quiet: true,
        onRecord: (metrics) => emit({ type: 'metrics', metrics }),
        onStep: (step, total, loss) => emit({ type: 'step', step, total, loss }),
      },
      runLoop,
      () => inMemory(inputs.model, inputs.tokenizer, cfg, log),
      parts,
      {
        name: `train('${method}')`,
        train: rows(inputs.train, 'train', false),
        eval: inputs.eval ? rows(inputs.eval, 'eval', true) : null,
      },
    );
    return { ...(result ?? { steps: 0, history: [] }), report };
  });
}
