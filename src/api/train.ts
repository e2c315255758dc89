// Training a model already in memory on rows already in memory, with the configuration the CLI
// uses (TRL's names and defaults): DPO, SFT and KTO. The same loop as `tsdpo dpo` (train/trainer.ts)
// without an output folder: nothing is written, the trained weights stay in the model, the metrics
// come as events. Works in browsers (no file access).
import { padIdFor } from '../data/collate.js';
import { preparePreferenceDataset, type DataReport } from '../data/pipeline.js';
import { prepareSftDataset } from '../data/sft.js';
import { prepareUnpairedDataset } from '../data/unpaired.js';
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
import {
  checkDpoConfig,
  computeReferenceLogps,
  dpoNotices,
  DpoObjective,
  ldAlphaOf,
  type Reference,
} from '../train/dpo.js';
import {
  checkKtoConfig,
  computeKtoReference,
  KTO_SPECS,
  KtoObjective,
  usesKl,
  weightAdvice,
  withKlCompletions,
  type KtoConfig,
  type KtoReference,
} from '../train/kto.js';
import type { NamedParam } from '../train/optim.js';
import { dataOptions, ktoDataOptions, reportLine } from '../train/data-options.js';
import { arrangeSftData, sftDataOptions, sftNotices, SftObjective, sftPadId, sftTokenizer } from '../train/sft.js';
import { train as runLoop, type Objective, type TrainResult } from '../train/loop.js';
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
   * DPO / KTO: the reference model. Default: the model before training, through its log-probs
   * computed once before the first step (TRL's precompute_ref_log_probs: the same numbers as a frozen
   * copy, at no extra memory); with a new LoRA adapter, the model with the adapter off.
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
  chat_template_path: "give the tokenizer the template (chat_template.jinja among tokenizerFromFiles' files)",
};

const inMemory = async (): Promise<never> => {
  throw new Error('train: in-memory runs write no checkpoints (use runTraining with an output_dir in Node)');
};

/** The trained parameters: the model's adapter, a new one (use_peft), or every weight. */
function trainable(
  model: CausalLM,
  cfg: CommonConfig & { disable_dropout?: boolean },
): { params: NamedParam[]; loraDropout: number; newLora: boolean } {
  const attached = adapterOf(model);
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
    return { params: info.params, loraDropout: cfg.disable_dropout ? 0 : info.config.lora_dropout, newLora: !attached };
  }
  return { params: trainAll(model), loraDropout: 0, newLora: false };
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
    const { model, tokenizer: tok } = inputs;
    model.gradientCheckpointing = cfg.gradient_checkpointing;
    const padId = padIdFor(tok);
    const data = <D extends { report: DataReport; examples: unknown[] }>(
      rows: readonly unknown[] | undefined,
      label: string,
      make: (r: unknown[]) => D,
    ): D | null => {
      if (!rows) return null;
      const d = make([...rows]);
      log(reportLine(`${label} data`, d.report as Parameters<typeof reportLine>[1]));
      if (label === 'train' && d.examples.length === 0)
        throw new Error(`train('${method}'): no training examples left (see the report above)`);
      return d;
    };
    let objective: Objective;
    let reports: TrainSummary['report'];
    const weights = { saveWeights: inMemory, loadWeights: inMemory };
    if (method === 'dpo') {
      const c = cfg as DpoConfig;
      checkDpoConfig(c);
      if (c.sync_ref_model && !inputs.reference)
        throw new Error('sync_ref_model: give the reference model (inputs.reference) to mix the policy into');
      dpoNotices(c).forEach(log);
      const trainSet = data(inputs.train, 'train', (r) => preparePreferenceDataset(r, tok, dataOptions(c)))!;
      const evalSet = data(inputs.eval, 'eval', (r) => preparePreferenceDataset(r, tok, dataOptions(c)));
      const t = trainable(model, c);
      let reference: Reference;
      if (inputs.reference) reference = { kind: 'model', model: inputs.reference };
      else if (t.newLora) reference = { kind: 'adapter-off' };
      else {
        // The model before training: its log-probs now, before the first step changes it.
        const pass = (ex: typeof trainSet.examples, bs: number, label: string) => {
          log(`reference log-probs (${label}): ${ex.length} pairs under the model before training`);
          return computeReferenceLogps(
            model,
            false,
            ex,
            padId,
            c.precompute_ref_batch_size || bs,
            undefined,
            ldAlphaOf(c),
          );
        };
        reference = {
          kind: 'cached',
          train: await pass(trainSet.examples, c.per_device_train_batch_size, 'train'),
          eval: evalSet ? await pass(evalSet.examples, c.per_device_eval_batch_size, 'eval') : null,
        };
      }
      objective = new DpoObjective({
        cfg: c,
        policy: model,
        params: t.params,
        reference,
        train: trainSet,
        eval: evalSet,
        padId,
        loraDropout: t.loraDropout,
        ...weights,
      });
      reports = { train: trainSet.report, eval: evalSet?.report ?? null };
    } else if (method === 'sft') {
      const c = cfg as SftConfig;
      sftNotices(c).forEach(log);
      const sftTok = sftTokenizer(c, tok);
      const prepare = (r: unknown[], split: string, isEval: boolean) =>
        arrangeSftData(c, prepareSftDataset(r, sftTok, sftDataOptions(c, dataOptions(c), split, isEval)), isEval);
      const trainSet = data(inputs.train, 'train', (r) => prepare(r, 'train', false))!;
      const evalSet = data(inputs.eval, 'eval', (r) => prepare(r, 'eval', true));
      const t = trainable(model, c);
      objective = new SftObjective({
        cfg: c,
        policy: model,
        params: t.params,
        train: trainSet,
        eval: evalSet,
        padId: sftPadId(c, tok),
        loraDropout: t.loraDropout,
        ...weights,
      });
      reports = { train: trainSet.report, eval: evalSet?.report ?? null };
    } else {
      const c = cfg as KtoConfig;
      checkKtoConfig(c);
      const trainSet = data(inputs.train, 'train', (r) => prepareUnpairedDataset(r, tok, ktoDataOptions(c)))!;
      const evalSet = data(inputs.eval, 'eval', (r) => prepareUnpairedDataset(r, tok, ktoDataOptions(c)));
      const advice = weightAdvice(
        trainSet.report.desirable,
        trainSet.report.undesirable,
        c.desirable_weight,
        c.undesirable_weight,
      );
      if (advice) log(advice);
      const t = trainable(model, c);
      let reference: KtoReference;
      if (inputs.reference) reference = { kind: 'model', model: inputs.reference };
      else if (t.newLora) reference = { kind: 'adapter-off' };
      else {
        const bs = c.per_device_train_batch_size,
          maxLength = c.max_length > 0 ? c.max_length : null;
        const pass = (ex: ReturnType<typeof withKlCompletions>, b: number, label: string) => {
          log(`reference log-probs (${label}): ${ex.length} examples under the model before training`);
          return computeKtoReference(
            model,
            false,
            ex,
            padId,
            maxLength,
            c.precompute_ref_batch_size || b,
            usesKl(c.loss_type),
          );
        };
        const evalEx = evalSet ? withKlCompletions(evalSet.examples, bs) : null;
        reference = {
          kind: 'cached',
          train: await pass(withKlCompletions(trainSet.examples, bs), bs, 'train'),
          eval: evalEx ? await pass(evalEx, c.per_device_eval_batch_size, 'eval') : null,
        };
      }
      objective = new KtoObjective({
        cfg: c,
        policy: model,
        params: t.params,
        reference,
        train: trainSet,
        eval: evalSet,
        padId,
        loraDropout: t.loraDropout,
        ...weights,
      });
      reports = { train: trainSet.report, eval: evalSet?.report ?? null };
    }
    const result = await runLoop(cfg, objective, {
      log,
      quiet: true,
      onRecord: (metrics) => emit({ type: 'metrics', metrics }),
      onStep: (step, total, loss) => emit({ type: 'step', step, total, loss }),
    });
    return { ...result, report: reports };
  });
}
