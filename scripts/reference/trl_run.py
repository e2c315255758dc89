"""Trains configs with TRL (the reference tsdpo is compared against) and writes each run's
trainer.state.log_history as JSON lines.

Options use tsdpo's names (src/train/config.ts), so one config file drives both sides. Models and
data are local only: nothing is downloaded (HF_HUB_OFFLINE is set before transformers loads).

Usage (with the reference venv's python, see setup-venv.sh):
  python scripts/reference/trl_run.py --trainer dpo --config cfg.yaml --out log.jsonl
  python scripts/reference/trl_run.py --trainer dpo --jobs jobs.json
where jobs.json is a list of {"config": {...}, "out": "log.jsonl", "sampler_order": [[...], ...]}
(a job's "trainer", when given, replaces --trainer for it);
one process runs them all (TRL's import takes seconds). sampler_order, when given, is the example
order of each epoch (tsdpo's sampler), so that both sides see the same batches.

--round_frozen_bf16 (or a job's "round_frozen_bf16": true) is the TRL side of tsdpo's frozen_dtype
bfloat16: the frozen weights (the reference model's; a LoRA base's) are rounded to bfloat16 and
widened back to float32 before training, so that TRL computes in float32 on the values tsdpo keeps
in 16 bits (test/reference/frozen-parity.test.ts). A full fine-tuning's policy stays float32.

A trainer is one entry of TRAINERS: DPO here; SFT, KTO, reward, GRPO and RLOO beside it (trl_*.py).
"""
import argparse
import json
import os
import sys
import tempfile

from trl_reward import run_reward  # this folder is on sys.path when run as a script

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

# tsdpo options that only steer how tsdpo computes (same numbers either way) or where it runs.
TSDPO_ONLY = {"device", "threads", "completion_only_head", "share_prompt", "config", "skip_invalid",
              "overwrite_output_dir", "resume_from_checkpoint", "save_steps", "save_total_limit", "output_dir",
              "memory_report", "shard"}

# tsdpo name -> TrainingArguments / DPOConfig name, where they differ.
RENAMES = {"optim": lambda v: ("optim", "adamw_torch" if v == "adamw" else v)}


def read_config(path):
    with open(path) as f:
        text = f.read()
    if path.endswith(".json"):
        return json.loads(text)
    import yaml
    return yaml.safe_load(text)


def load_rows(path):
    import datasets
    if os.path.isdir(path):
        raise ValueError(f"{path}: give the data file itself (.jsonl / .json / .parquet)")
    kind = "parquet" if path.endswith(".parquet") else "json"
    return datasets.load_dataset(kind, data_files=path, split="train")


class FixedOrderSampler:
    """Yields the given example order of each epoch in turn (the last one repeats)."""

    def __init__(self, orders):
        self.orders = orders
        self.epoch = 0

    def __len__(self):
        return len(self.orders[0])

    def __iter__(self):
        order = self.orders[min(self.epoch, len(self.orders) - 1)]
        self.epoch += 1
        return iter(order)


def training_arguments(cfg, out_dir):
    """The TrainingArguments part of a tsdpo config (shared by every trainer)."""
    args = dict(
        output_dir=out_dir, report_to="none", save_strategy="no", bf16=False, fp16=False,
        # The CPU unless USE_CPU=0 (an exported run on GPUs: scripts launched by `tsdpo export`'s launch.sh).
        use_cpu=os.environ.get("USE_CPU", "1") != "0",
        gradient_checkpointing=False, dataloader_num_workers=0, disable_tqdm=True, logging_strategy="steps",
    )
    for k in ["learning_rate", "lr_scheduler_type", "num_train_epochs", "max_steps", "per_device_train_batch_size",
              "per_device_eval_batch_size", "gradient_accumulation_steps", "weight_decay", "adam_beta1", "adam_beta2",
              "adam_epsilon", "max_grad_norm", "seed", "logging_steps", "gradient_checkpointing"]:
        if k in cfg:
            args[k] = cfg[k]
    if cfg.get("data_seed", -1) >= 0:
        args["data_seed"] = cfg["data_seed"]
    if "optim" in cfg:
        args["optim"] = RENAMES["optim"](cfg["optim"])[1]
    # transformers 5 folds warmup_ratio into warmup_steps (a value below 1 is a ratio).
    if cfg.get("warmup_steps", 0) > 0:
        args["warmup_steps"] = cfg["warmup_steps"]
    elif cfg.get("warmup_ratio", 0) > 0:
        args["warmup_steps"] = float(cfg["warmup_ratio"])
    # Processes share the configured batch (an exported run keeps tsdpo's global batch on N processes).
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if os.environ.get("TSDPO_SHARE_BATCH") == "1" and world > 1:
        for k in ["per_device_train_batch_size", "per_device_eval_batch_size"]:
            n = args.get(k, 8)
            if n % world:
                raise ValueError(f"{k} {n} is not divisible by the {world} processes: make it a multiple of {world}")
            args[k] = n // world
    # An exported run (--output_dir) keeps TRL checkpoints every save_steps (tsdpo's 0: the final model only).
    if os.environ.get("TSDPO_SAVE_MODEL") == "1" and cfg.get("save_steps", 0) > 0:
        args.update(save_strategy="steps", save_steps=cfg["save_steps"], save_total_limit=cfg.get("save_total_limit") or None)
    if cfg.get("eval_dataset"):
        args["eval_strategy"] = "steps"
        args["eval_steps"] = cfg.get("eval_steps") or cfg.get("logging_steps", 10)
    return args


def rounding_frozen():
    """Whether this job rounds its frozen weights to bfloat16 (--round_frozen_bf16; main sets it per job)."""
    return os.environ.get("TSDPO_ROUND_FROZEN_BF16") == "1"


def uses_peft(cfg):
    return bool(cfg.get("adapter") or cfg.get("use_peft"))


def round_bf16(model, what):
    """Rounds model's matrices to bfloat16 and back to float32 in place, as tsdpo's frozen_dtype bfloat16
    keeps them (src/models/build.ts: tensors of 2+ dimensions; norm weights and biases stay float32).
    LoRA adapter weights are trained (or a frozen copy of trained ones): they stay float32."""
    import torch
    n = 0
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied weights (gpt2, gemma3) are listed once
            if p.dim() >= 2 and "lora_" not in name:
                p.copy_(p.to(torch.bfloat16).to(torch.float32))
                n += 1
    if n == 0:
        raise ValueError(f"--round_frozen_bf16: {what} has no matrix to round")
    return model


def load_policy(cfg):
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(cfg["model_name_or_path"], dtype=torch.float32,
                                                 attn_implementation="eager")
    if rounding_frozen() and uses_peft(cfg):  # the base under the adapter is frozen
        round_bf16(model, f"the LoRA base {cfg['model_name_or_path']}")
    peft_config = None
    if cfg.get("adapter"):
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, cfg["adapter"], is_trainable=True)
    elif cfg.get("use_peft"):
        from peft import LoraConfig
        targets = cfg.get("lora_target_modules") or None  # None: PEFT's default for the model_type
        peft_config = LoraConfig(r=cfg.get("lora_r", 16), lora_alpha=cfg.get("lora_alpha", 32),
                                 lora_dropout=cfg.get("lora_dropout", 0.05), task_type="CAUSAL_LM",
                                 target_modules="all-linear" if targets == ["all-linear"] else targets)
    return model, peft_config


def load_reference(cfg):
    """The ref_model of a config (None: the trainer's default reference). Rounding the frozen weights of a
    full fine-tuning, the default reference (a copy of the model, which TRL would load itself, or the policy
    that precompute_ref_log_probs would use) is loaded here and rounded; under LoRA it is the rounded base."""
    path = cfg.get("ref_model")
    if not path and rounding_frozen() and not uses_peft(cfg):
        path = cfg["model_name_or_path"]
    if not path:
        return None
    import torch
    from transformers import AutoModelForCausalLM
    ref = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    return round_bf16(ref, f"the reference {path}") if rounding_frozen() else ref


def train(trainer):
    """trainer.train(), continuing --resume_from_checkpoint (a TRL checkpoint, or a tsdpo one: trl_resume.py)."""
    from trl_resume import resume_path
    trainer.train(resume_from_checkpoint=resume_path(trainer, os.environ.get("TSDPO_RESUME_FROM")))


def train_log_history(trainer_cls, sampler_order, setup=None, **kwargs):
    """Trains trainer_cls(**kwargs), in sampler_order when given, and returns its log_history. setup(trainer)
    runs between the trainer's construction and its training."""
    class Trainer(trainer_cls):
        def _get_train_sampler(self, train_dataset=None):
            return FixedOrderSampler(sampler_order) if sampler_order else super()._get_train_sampler(train_dataset)

    trainer = Trainer(**kwargs)
    if setup:
        setup(trainer)
    train(trainer)
    if os.environ.get("TSDPO_SAVE_MODEL") == "1":  # --output_dir: keep the trained model there
        trainer.save_model()
    return trainer.state.log_history


DPO_KEYS = ["beta", "loss_type", "loss_weights", "label_smoothing", "precompute_ref_log_probs", "max_length",
            "truncation_mode", "use_weighting", "ld_alpha", "f_divergence_type", "f_alpha_divergence_coef",
            "discopop_tau", "precompute_ref_batch_size", "pad_to_multiple_of", "disable_dropout", "sync_ref_model",
            "ref_model_mixup_alpha", "ref_model_sync_steps", "padding_free"]


def run_dpo(cfg, out_dir, sampler_order):
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    unknown = set(cfg) - TSDPO_ONLY - set(DPO_KEYS) - {
        "model_name_or_path", "dataset", "eval_dataset", "ref_model", "adapter", "use_peft", "lora_r", "lora_alpha",
        "lora_dropout", "lora_target_modules", "warmup_steps", "warmup_ratio", "optim", "eval_steps", "data_seed",
        "prompt_column", "chosen_column", "rejected_column"} - set(training_arguments(cfg, out_dir))
    if unknown:
        raise ValueError(f"trl_run.py dpo: options {sorted(unknown)} have no TRL 1.13 DPOConfig equivalent here")
    args = training_arguments(cfg, out_dir)
    for k in DPO_KEYS:
        if k in cfg:
            args[k] = cfg[k]
    # tsdpo spells TRL's None as 0 / -1 / an empty list.
    for k, off in [("max_length", 0), ("precompute_ref_batch_size", 0), ("ld_alpha", -1), ("loss_weights", []),
                   ("pad_to_multiple_of", 0)]:
        if k in args and args[k] == off:
            args[k] = None
    model, peft_config = load_policy(cfg)
    tok = AutoTokenizer.from_pretrained(cfg["model_name_or_path"])
    rename = {cfg.get(f"{c}_column", c): c for c in ["prompt", "chosen", "rejected"]}
    train = load_rows(cfg["dataset"]).rename_columns({k: v for k, v in rename.items() if k != v})
    evals = load_rows(cfg["eval_dataset"]) if cfg.get("eval_dataset") else None
    return train_log_history(DPOTrainer, sampler_order, model=model, ref_model=load_reference(cfg), args=DPOConfig(**args),
                             train_dataset=train, eval_dataset=evals, processing_class=tok, peft_config=peft_config)


TRAINERS = {"dpo": run_dpo, "reward": run_reward}
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from trl_sft import run_sft  # noqa: E402  (scripts/reference/trl_sft.py)
TRAINERS["sft"] = run_sft
TRAINERS["kto"] = lambda cfg, out_dir, order: __import__("trl_kto").run_kto(cfg, out_dir, order)  # scripts/reference/trl_kto.py
from trl_grpo import run_grpo, run_rloo  # noqa: E402  (GRPO / RLOO on fixed completions)
from trl_rollout import run_sampled  # noqa: E402  (GRPO / RLOO sampling, as an exported run)
TRAINERS.update(grpo=lambda cfg, out, order: run_grpo(cfg, out, order) if "completions" in cfg else run_sampled("grpo", cfg, out),
                rloo=lambda cfg, out, order: run_rloo(cfg, out, order) if "completions" in cfg else run_sampled("rloo", cfg, out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trainer", choices=sorted(TRAINERS), default="dpo")
    p.add_argument("--config", help="YAML or JSON file of tsdpo options")
    p.add_argument("--out", help="where to write log_history (JSON lines) for --config")
    p.add_argument("--jobs", help="JSON list of {config, out, sampler_order?}")
    p.add_argument("--output_dir", help="keep the run here and save the trained model (default: a temporary folder)")
    p.add_argument("--resume_from_checkpoint", help="continue this checkpoint folder (TRL's, or tsdpo's: converted by trl_resume.py)")
    p.add_argument("--round_frozen_bf16", action="store_true",
                   help="round the frozen weights (reference, LoRA base) to bfloat16 and back: tsdpo's frozen_dtype bfloat16")
    a = p.parse_args()
    if a.jobs:
        with open(a.jobs) as f:
            jobs = json.load(f)
    elif a.config and a.out:
        jobs = [{"config": read_config(a.config), "out": a.out}]
    else:
        p.error("give --jobs, or --config and --out")
    import datasets
    datasets.disable_progress_bars()
    failed = 0
    main_process = int(os.environ.get("RANK", "0")) == 0  # under accelerate, one process writes
    if a.output_dir:
        os.environ["TSDPO_SAVE_MODEL"] = "1"
    if a.resume_from_checkpoint:
        os.environ["TSDPO_RESUME_FROM"] = os.path.abspath(a.resume_from_checkpoint)
    for job in jobs:
        # Read by rounding_frozen() in this module and in the trl_*.py beside it (they import it as trl_run).
        os.environ["TSDPO_ROUND_FROZEN_BF16"] = "1" if a.round_frozen_bf16 or job.get("round_frozen_bf16") else "0"
        with tempfile.TemporaryDirectory(prefix="trl-run-") as tmp:
            try:
                # A job may name its own trainer (one process for a mixed list; TRL's import takes seconds).
                history = TRAINERS[job.get("trainer", a.trainer)](job["config"], a.output_dir or tmp, job.get("sampler_order"))
            except Exception as e:  # one bad job is reported; the others still run
                failed += 1
                print(f"trl_run.py: {job['out']}: {type(e).__name__}: {e}", file=sys.stderr)
                with open(job["out"], "w") as f:
                    f.write(json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n")
                continue
        if not main_process:
            continue
        with open(job["out"], "w") as f:
            for line in history:
                f.write(json.dumps(line) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
