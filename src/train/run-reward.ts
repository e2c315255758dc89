// `tsdpo reward` on the run skeleton (run.ts runMethod): a one-label sequence classifier (continued
// from a *ForSequenceClassification folder, or a causal LM folder with a new score head), reward
// data, the Bradley-Terry objective (reward.ts), the shared loop, and the final model written into
// output_dir as a folder transformers loads (or a PEFT adapter whose modules_to_save holds the score
// head), with the tokenizer files.
import { padIdFor } from '../data/collate.js';
import { loadRewardDataset, type RewardDataset } from '../data/reward.js';
import { trainAll } from '../models/build.js';
import { restoreModel } from '../models/load.js';
import { newAdapter, restoreAdapter, saveAdapter } from '../models/lora.js';
import {
  loadRewardAdapter,
  loadSequenceClassifier,
  saveSequenceClassifier,
  type SequenceClassifier,
} from '../models/seqcls.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { NamedParam } from './optim.js';
import { COMMON_OPTIONS } from './config.js';
import type { RewardConfig } from './reward-config.js';
import { RewardObjective } from './reward.js';
import { runMethod, TOKENIZER_FILES, type Log, type RunOptions, type RunSummary, type TrainedModel } from './run.js';

function reportLine(name: string, r: RewardDataset['report']): string {
  return `${name}: ${r.rows} pairs from ${r.read} rows (${r.format}); dropped ${r.dropped} longer than max_length, skipped ${r.skippedInvalid} invalid`;
}

/** Writes / restores what training changes: the whole classifier, or the adapter + score head. */
function weightsIo(cfg: RewardConfig, sc: SequenceClassifier, lora: boolean, padId: number) {
  const scoreHost = async () =>
    new Map([['score.weight', { shape: [...sc.score.shape], data: Float32Array.from(await sc.score.toArray()) }]]);
  const save = async (dir: string): Promise<void> => {
    if (!lora) return saveSequenceClassifier(sc, dir, padId);
    // PEFT's SEQ_CLS task: the score head is trained whole and saved beside the factors (modules_to_save).
    await saveAdapter(sc.model, dir, cfg.model_name_or_path, {
      config: { task_type: 'SEQ_CLS', modules_to_save: ['score'] },
      tensors: await scoreHost(),
    });
  };
  // A checkpoint restores in place, with the shape checks of loading a model or an adapter; the score head beside it.
  const load = async (dir: string): Promise<void> => {
    const tensors = lora
      ? restoreAdapter(sc.model, dir).extraTensors
      : restoreModel(sc.model, dir, (name) => name === 'score.weight').tensors;
    const score = tensors.get('score.weight');
    if (!score) throw new Error(`${dir}: checkpoint lacks tensor score.weight`);
    sc.score.backend.write(sc.score.storage, score.toFloat32());
  };
  return { save, load };
}

/** The trained reward model: the classifier (whole, or LoRA on its body) and its score head. */
export interface RewardModelParts extends TrainedModel {
  sc: SequenceClassifier;
}

/** The classifier of a reward run, its parameters (the score head last) and its weight files. */
export function rewardModel(
  cfg: RewardConfig,
  { tok, log, frozenDtype }: { tok: TextTokenizer; log: Log; frozenDtype?: 'f32' | 'bf16' },
): RewardModelParts {
  const lora = cfg.use_peft || cfg.adapter !== '';
  // Seeded as TRL seeds before AutoModelForSequenceClassification makes a new head. With LoRA the
  // body is frozen: frozen_dtype applies to it (the score head trains, f32).
  const sc = loadSequenceClassifier(cfg.model_name_or_path, {
    newHead: { numLabels: 1, seed: cfg.seed },
    frozenDtype: lora ? frozenDtype : 'f32',
  });
  if (sc.score.shape[0] !== 1) {
    throw new Error(
      `${cfg.model_name_or_path}: score.weight has ${sc.score.shape[0]} labels; a reward model has one (num_labels 1)`,
    );
  }
  let params: NamedParam[];
  let loraDropout = 0;
  if (lora) {
    const targets =
      cfg.lora_target_modules.length === 1 && cfg.lora_target_modules[0] === 'all-linear'
        ? 'all-linear'
        : cfg.lora_target_modules;
    const info = cfg.adapter
      ? loadRewardAdapter(sc, cfg.adapter)
      : newAdapter(sc.model, {
          r: cfg.lora_r,
          alpha: cfg.lora_alpha,
          targetModules: targets,
          dropout: cfg.lora_dropout,
          seed: cfg.seed,
        });
    params = [...info.params];
    loraDropout = cfg.disable_dropout ? 0 : info.config.lora_dropout;
  } else {
    params = trainAll(sc.model);
  }
  sc.score.requiresGrad = true;
  params.push({ name: 'score.weight', tensor: sc.score });
  const count = params.reduce((a, p) => a + p.tensor.size, 0);
  log(
    `reward model from ${cfg.model_name_or_path} (${sc.model.family}${sc.newHead ? ', new score head' : ''}); training ${(count / 1e6).toFixed(3)}M${lora ? ' LoRA + score' : ''} parameters`,
  );
  const io = weightsIo(cfg, sc, lora, padIdFor(tok));
  return {
    sc,
    policy: sc.model,
    params,
    lora,
    loraDropout,
    saveWeights: io.save,
    loadWeights: io.load,
    // The tokenizer travels with the classifier and with the adapter (a classifier has no generation config).
    finalFiles: TOKENIZER_FILES.filter((x) => x !== 'generation_config.json'),
  };
}

export async function runReward(cfg: RewardConfig, opts: RunOptions = {}): Promise<RunSummary> {
  if (cfg.center_rewards_coefficient < 0)
    throw new Error(`--center_rewards_coefficient is ${cfg.center_rewards_coefficient}; expected >= 0 (0 = off)`);
  const dataOpts = {
    columns: {
      prompt: cfg.prompt_column === COMMON_OPTIONS.prompt_column.default ? undefined : cfg.prompt_column,
      chosen: cfg.chosen_column,
      rejected: cfg.rejected_column,
      margin: cfg.margin_column,
    },
    skipInvalid: cfg.skip_invalid,
    maxLength: cfg.max_length > 0 ? cfg.max_length : null,
  };
  return runMethod(cfg, opts, {
    command: 'reward',
    model: rewardModel,
    unit: 'pairs',
    describe: reportLine,
    load: (path, split, s) => loadRewardDataset(path, s.tok, { ...dataOpts, split }),
    objective: async (s, train, evalData) => ({
      objective: new RewardObjective({
        cfg,
        model: s.sc,
        params: s.params,
        train,
        eval: evalData,
        padId: padIdFor(s.tok),
        loraDropout: s.loraDropout,
        saveWeights: s.saveWeights,
        loadWeights: s.loadWeights,
      }),
    }),
  });
}
