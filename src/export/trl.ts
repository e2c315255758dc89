// `tsdpo export --to trl`: the same run as a folder that TRL 1.13 + accelerate (or DeepSpeed) runs on
// one machine or many. The folder holds the reference runner (scripts/reference/trl_run.py: tsdpo's
// option names -> DPOConfig / SFTConfig, the one the parity tests check), the config translated field
// by field, the data as JSON lines, accelerate configs, pinned requirements and launch.sh.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { readRecordsFromFile } from '../data/read.js';
import { listSplits, resolveSplitFiles } from '../data/splits.js';
import type { OptionSpec } from '../train/config.js';
import { lossTerms } from '../train/dpo.js';
import type { DpoConfig } from '../train/config.js';

export const EXPORT_TRAINERS = ['dpo', 'sft', 'reward', 'kto', 'grpo', 'rloo'] as const;
export type ExportTrainer = (typeof EXPORT_TRAINERS)[number];

/** Options that steer only how or where tsdpo computes, each with why it is not carried. */
export const NOT_CARRIED: Record<string, string> = {
  device: 'accelerate places the processes (launch.sh: USE_CPU, NUM_PROCESSES)',
  threads: 'torch sets its own threads per process',
  completion_only_head: 'tsdpo computes the LM head on completion positions only; the same numbers',
  share_prompt: "tsdpo runs each pair's prompt once; the same numbers",
  config: 'this folder holds the config (config.json)',
  skip_invalid: 'the rows were checked and written to data/ by the export',
  overwrite_output_dir: 'the run writes into output/ (launch.sh)',
  resume_from_checkpoint:
    'launch.sh --resume_from_checkpoint DIR continues a checkpoint of TRL or of tsdpo (README.md: Checkpoints)',
  output_dir: 'the run writes into output/ (launch.sh)',
  max_prompt_length: "tsdpo's own: TRL 1.13 truncates prompt + completion to max_length only",
  max_completion_length: "tsdpo's own: TRL 1.13 truncates prompt + completion to max_length only",
  simpo_gamma: "tsdpo's own loss (TRL has SimPO in CPOTrainer)",
  memory_report: "tsdpo's own memory report (torch has its profilers)",
  frozen_dtype:
    "tsdpo's 16-bit frozen weights (reference, LoRA base); with TRL, " +
    'load the models in bfloat16 (model_init_kwargs torch_dtype, bf16)',
  shard:
    "tsdpo's split of its reference pass over runs; TRL's precompute_ref_log_probs runs in the data-parallel processes",
};

/** Per trainer, the options its TRL trainer lacks (beyond NOT_CARRIED). */
const TRAINER_NOT_CARRIED: Record<ExportTrainer, Record<string, string>> = {
  dpo: {},
  sft: {
    chosen_column:
      "tsdpo's own: tsdpo sft trains on the chosen completion of preference " +
      "rows; TRL's SFTTrainer takes text, prompt-completion or messages rows",
    rejected_column: 'as chosen_column',
  },
  reward: {},
  kto: {
    truncation_mode:
      "TRL 1.13's KTOConfig always keeps the start of prompt + completion (tsdpo kto accepts keep_start only)",
  },
  grpo: {},
  rloo: {},
};

/** The versions the exported script was tested with (test/reference/export.test.ts, the reference venv). */
export const REQUIREMENTS = [
  'torch==2.13.0',
  'transformers==5.17.0',
  'trl==1.13.0',
  'peft==0.21.0',
  'accelerate==1.15.0',
  'datasets',
];

export interface ExportResult {
  dir: string;
  carried: Record<string, unknown>;
  notCarried: Record<string, string>;
}

const require = createRequire(import.meta.url);

/** The repository's root (dist/src/export/trl.js sits three folders below it). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function writeJsonLines(files: string[], out: string): Promise<number> {
  const rows: string[] = [];
  for (const f of files) for (const r of await readRecordsFromFile(f)) rows.push(JSON.stringify(r.value));
  writeFileSync(out, rows.join('\n') + '\n');
  return rows.length;
}

/**
 * Writes the TRL run of `cfg` (a resolved tsdpo config of `trainer`, whose options are `specs`) into `dir`. Every
 * option is either
 * carried into config.yaml (under its TRL name: tsdpo uses TRL's) or listed as not carried with the
 * reason; options left at their defaults are carried only where TRL's default differs from tsdpo's.
 */
export async function exportToTrl(
  trainer: ExportTrainer,
  specs: Record<string, OptionSpec>,
  cfg: Record<string, unknown>,
  dir: string,
  numProcesses = 2,
): Promise<ExportResult> {
  if (!cfg.model_name_or_path) throw new Error('export: --model is required');
  if (!cfg.dataset) throw new Error('export: --data is required');
  mkdirSync(join(dir, 'data'), { recursive: true });
  mkdirSync(join(dir, 'accelerate'), { recursive: true });
  const carried: Record<string, unknown> = {},
    notCarried: Record<string, string> = {};
  const dropped = { ...NOT_CARRIED, ...TRAINER_NOT_CARRIED[trainer] };
  // GRPOConfig / RLOOConfig have max_completion_length (the tokens sampled), unlike DPO / SFT's configs.
  if (trainer === 'grpo' || trainer === 'rloo') delete dropped.max_completion_length;
  for (const key of Object.keys(specs)) {
    const v = cfg[key];
    if (key in dropped) {
      const set = JSON.stringify(v) !== JSON.stringify(specs[key].default);
      notCarried[key] = `${dropped[key]}${set ? ` (this run set it to ${JSON.stringify(v)})` : ''}`;
      continue;
    }
    carried[key] = v;
  }
  if (trainer === 'dpo') {
    // rpo_alpha is not in TRL 1.13: its equivalent is one more loss term.
    const terms = lossTerms(cfg as unknown as DpoConfig);
    carried.loss_type = terms.map(([name]) => name);
    carried.loss_weights = terms.some(([, w]) => w !== 1) ? terms.map(([, w]) => w) : [];
    delete carried.rpo_alpha;
    if (Number(cfg.rpo_alpha) > 0)
      notCarried.rpo_alpha =
        `carried as loss_type ${(carried.loss_type as string[]).join(',')} with loss_weights ` +
        `${(carried.loss_weights as number[]).join(',')} (TRL 1.13's equivalent)`;
    const own = (carried.loss_type as string[]).filter((l) => ['reference_free', 'simpo'].includes(l));
    if (own.length)
      throw new Error(`export: loss_type ${own.join(', ')} is tsdpo's own; TRL 1.13's DPOTrainer has no such loss`);
  }
  if (trainer === 'grpo' || trainer === 'rloo') carried.reward_funcs = rewardFuncs(cfg.reward_funcs as string[], dir);
  for (const k of ['ref_model', 'adapter']) if (carried[k]) carried[k] = resolve(String(carried[k]));
  // Data: the train split (and the eval split) as JSON lines.
  const data = String(cfg.dataset);
  carried.model_name_or_path = resolve(String(cfg.model_name_or_path));
  const trainRows = await writeJsonLines(resolveSplitFiles(data, 'train'), join(dir, 'data', 'train.jsonl'));
  carried.dataset = 'data/train.jsonl';
  const evaluates = 'eval_dataset' in specs;
  const evalPath = !evaluates
    ? ''
    : cfg.eval_dataset
      ? String(cfg.eval_dataset)
      : existsSync(data) && listSplits(data).includes('test')
        ? data
        : '';
  if (evalPath) {
    await writeJsonLines(
      resolveSplitFiles(evalPath, listSplits(evalPath).includes('test') ? 'test' : 'train'),
      join(dir, 'data', 'eval.jsonl'),
    );
    carried.eval_dataset = 'data/eval.jsonl';
  } else {
    delete carried.eval_dataset;
  }
  // The runner and its trainer modules (trl_run.py imports every trl_<trainer>.py it registers).
  const ref = join(ROOT, 'scripts', 'reference');
  for (const f of readdirSync(ref).filter((n) => /^trl_\w+\.py$/.test(n))) copyFileSync(join(ref, f), join(dir, f));
  // JSON: YAML 1.1 (PyYAML) would read 1e-8 as a string and no as false.
  writeFileSync(join(dir, 'config.json'), JSON.stringify(carried, null, 2) + '\n');
  writeFileSync(join(dir, 'requirements.txt'), REQUIREMENTS.join('\n') + '\n');
  writeAccelerateConfigs(dir, numProcesses);
  writeFileSync(join(dir, 'launch.sh'), launchScript(trainer, numProcesses), { mode: 0o755 });
  writeFileSync(join(dir, 'README.md'), readme(trainer, trainRows, carried, notCarried, numProcesses));
  return { dir, carried, notCarried };
}

/**
 * GRPO / RLOO rewards as the runner takes them: 'sentiment' (the AFINN lexicon, copied into
 * DIR/sentiment/ for the runner's Python port, trl_rollout.py) and reward model folders (absolute
 * paths; TRL loads them as *ForSequenceClassification). A JS module cannot run under Python.
 */
function rewardFuncs(specs: readonly string[], dir: string): string[] {
  return specs.map((spec) => {
    if (spec === 'sentiment') {
      mkdirSync(join(dir, 'sentiment'), { recursive: true });
      for (const f of ['labels.json', 'negators.json'])
        copyFileSync(require.resolve(`sentiment/languages/en/${f}`), join(dir, 'sentiment', f));
      return spec;
    }
    if (existsSync(spec) && statSync(spec).isDirectory()) return resolve(spec);
    throw new Error(
      `export: reward function ${spec} is a JavaScript module; ` +
        `TRL's reward_funcs are Python: write it as a Python function ` +
        '(prompts, completions, **kwargs) -> list of floats in ' +
        "trl_rollout.py's REWARDS, or use sentiment or a reward model folder",
    );
  });
}

function writeAccelerateConfigs(dir: string, n: number): void {
  const base = {
    compute_environment: 'LOCAL_MACHINE',
    debug: false,
    downcast_bf16: 'no',
    machine_rank: 0,
    main_training_function: 'main',
    mixed_precision: 'no',
    rdzv_backend: 'static',
    same_network: true,
    tpu_env: [],
    tpu_use_cluster: false,
    tpu_use_sudo: false,
    use_cpu: false,
  };
  const files: Record<string, object> = {
    'single_node.yaml': { ...base, distributed_type: 'MULTI_GPU', num_machines: 1, num_processes: n, gpu_ids: 'all' },
    // CPU processes: accelerate's torchrun launcher (that of MULTI_GPU) starts them, and the script's
    // TrainingArguments(use_cpu=True) (USE_CPU=1) joins them with gloo. What launch.sh takes with USE_CPU=1.
    'cpu.yaml': { ...base, distributed_type: 'MULTI_GPU', num_machines: 1, num_processes: n },
    // Filled in by the cluster's launcher (see README.md): machine rank, main address, process count.
    'multi_node.yaml': {
      ...base,
      distributed_type: 'MULTI_GPU',
      num_machines: 2,
      num_processes: 2 * n,
      main_process_ip: 'MAIN_NODE_ADDRESS',
      main_process_port: 29500,
    },
    'deepspeed_zero2.yaml': {
      ...base,
      distributed_type: 'DEEPSPEED',
      num_machines: 1,
      num_processes: n,
      deepspeed_config: {
        zero_stage: 2,
        offload_optimizer_device: 'none',
        offload_param_device: 'none',
        zero3_init_flag: false,
        gradient_accumulation_steps: 'auto',
        gradient_clipping: 'auto',
      },
    },
    'deepspeed_zero3.yaml': {
      ...base,
      distributed_type: 'DEEPSPEED',
      num_machines: 1,
      num_processes: n,
      deepspeed_config: {
        zero_stage: 3,
        offload_optimizer_device: 'none',
        offload_param_device: 'none',
        zero3_init_flag: true,
        zero3_save_16bit_model: true,
        gradient_accumulation_steps: 'auto',
        gradient_clipping: 'auto',
      },
    },
  };
  for (const [name, cfg] of Object.entries(files))
    writeFileSync(join(dir, 'accelerate', name), toYaml(cfg, { version: '1.1' }));
}

function launchScript(trainer: ExportTrainer, n: number): string {
  return `#!/usr/bin/env bash
# Runs this ${trainer} config with TRL 1.13 under accelerate. The processes share the configured batch
# (per_device_train_batch_size / NUM_PROCESSES each), so the global batch is the tsdpo run's.
# Env: NUM_PROCESSES (default ${n}), USE_CPU=1 (CPU processes, gloo: accelerate/cpu.yaml), ACCELERATE_CONFIG
#      (default accelerate/single_node.yaml; deepspeed_zero2.yaml / deepspeed_zero3.yaml / multi_node.yaml),
#      PYTHON (default python3), ACCELERATE (default: accelerate beside PYTHON, else on PATH).
# Writes TRL's log_history to output/log_history.jsonl and the trained model to output/.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="\${PYTHON:-python3}"
ACCELERATE="\${ACCELERATE:-$(dirname "$(command -v "$PYTHON")")/accelerate}"
[ -x "$ACCELERATE" ] || ACCELERATE=accelerate
config=accelerate/single_node.yaml
if [ "\${USE_CPU:-0}" = 1 ]; then config=accelerate/cpu.yaml; fi
mkdir -p output
USE_CPU="\${USE_CPU:-0}" TSDPO_SHARE_BATCH=1 HF_HUB_OFFLINE=1 "$ACCELERATE" launch \\
  --config_file "\${ACCELERATE_CONFIG:-$config}" --num_processes "\${NUM_PROCESSES:-${n}}" \\
  trl_run.py --trainer ${trainer} --config config.json --out output/log_history.jsonl --output_dir output "$@"
`;
}

const SAMPLING_NOTE = `
## Sampling
TRL samples the completions with torch's random numbers, tsdpo with its own generator: the two runs train
on different completions, so their metrics agree in kind, not value. \`sentiment\` is tsdpo's reward in
Python (\`trl_rollout.py\`, its AFINN lexicon in \`sentiment/\`); reward model folders load in TRL as
*ForSequenceClassification. A JavaScript reward module does not export: write it as a Python function in
\`trl_rollout.py\`'s REWARDS.
`;

/** What to know about each trainer's exported run. */
const NOTES: Record<ExportTrainer, string> = {
  dpo: '',
  sft: '',
  kto: '',
  reward: `
## Reward model
A causal LM folder as model_name_or_path gets a new score head on either side, drawn by different
generators (tsdpo's, torch's): start both from the same *ForSequenceClassification folder for the same run.
`,
  grpo: SAMPLING_NOTE,
  rloo: SAMPLING_NOTE,
};

function readme(
  trainer: ExportTrainer,
  rows: number,
  carried: Record<string, unknown>,
  notCarried: Record<string, string>,
  n: number,
): string {
  const lines = Object.entries(notCarried).map(([k, why]) => `- \`${k}\`: ${why}`);
  return `# A tsdpo ${trainer} run for TRL 1.13 + accelerate

Made by \`tsdpo export --to trl\`. The same run as \`tsdpo ${trainer}\` with this config: the option
names are TRL's, and the runner (\`trl_run.py\`) is the one tsdpo's parity tests compare against.

- \`config.json\`: the config (${Object.keys(carried).length} options carried). Model:
  \`${String(carried.model_name_or_path)}\` (edit the path where the cluster sees the model).
- \`data/train.jsonl\` (${rows} rows)${carried.eval_dataset ? ', `data/eval.jsonl`' : ''}.
- \`accelerate/\`: \`single_node.yaml\` (${n} GPU processes), \`cpu.yaml\` (CPU processes), \`multi_node.yaml\`, \`deepspeed_zero2.yaml\`,
  \`deepspeed_zero3.yaml\` (DeepSpeed must be installed for these).
- \`requirements.txt\`: the versions this was tested with.
- \`launch.sh\`: runs it; \`output/log_history.jsonl\` is TRL's log, \`output/\` the trained model (it
  loads in \`tsdpo eval\`, \`tsdpo logprobs\` and \`tsdpo generate\`).

\`\`\`sh
pip install -r requirements.txt
bash launch.sh                                   # GPUs of this machine, ${n} processes
NUM_PROCESSES=8 ACCELERATE_CONFIG=accelerate/deepspeed_zero3.yaml bash launch.sh
USE_CPU=1 NUM_PROCESSES=2 bash launch.sh         # CPU processes (gloo), e.g. to check the setup
\`\`\`

The processes share the configured batch (\`per_device_train_batch_size\` / NUM_PROCESSES each), so
the global batch is the tsdpo run's; it must be divisible by the number of processes.

On a SLURM cluster (one task per node; accelerate starts the processes of each node):

\`\`\`sh
#!/bin/bash
#SBATCH --nodes=2 --ntasks-per-node=1 --gpus-per-node=8
MAIN=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun bash -c 'accelerate launch --config_file accelerate/multi_node.yaml --num_machines $SLURM_NNODES \\
  --num_processes $((SLURM_NNODES * 8)) --machine_rank $SLURM_NODEID --main_process_ip '"$MAIN"' \\
  trl_run.py --trainer ${trainer} --config config.json --out output/log_history.jsonl --output_dir output'
\`\`\`
(with \`TSDPO_SHARE_BATCH=1\` in the environment to keep the global batch, as launch.sh does).

## Checkpoints
\`save_steps\` > 0 keeps TRL checkpoints in \`output/checkpoint-N/\` (they load in \`tsdpo eval\`, \`logprobs\` and
\`generate\`). \`bash launch.sh --resume_from_checkpoint DIR\` continues a TRL checkpoint, or one written by
tsdpo (\`OUTPUT/checkpoint-N/\` of \`tsdpo ${trainer}\`): \`trl_resume.py\` converts it first, into
\`output/tsdpo-checkpoint-N/\`. Carried over: the weights, AdamW's moments and step count, the learning-rate
schedule's position, global_step, epoch and the log history. Not carried: random-number state (tsdpo's
generators are not torch's; nothing is random with dropout off) and the position inside an epoch (TRL
replays its own data order and skips the batches already trained). AdamW runs, of all weights or of a LoRA
adapter (use_peft as in the tsdpo run). TRL's num_tokens counter restarts at a resume, as with its own checkpoints.
${NOTES[trainer]}
## Not carried
Every other option of \`tsdpo ${trainer}\` is in config.json under its TRL 1.13 name.

${lines.join('\n')}
`;
}

/** The not-carried table, for --help. */
export function notCarriedHelp(): string {
  return Object.entries(NOT_CARRIED)
    .map(([k, why]) => `  ${k}: ${why}`)
    .join('\n');
}
