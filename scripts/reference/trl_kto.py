"""The KTO entry of trl_run.py's TRAINERS: trains a tsdpo kto config with TRL 1.13's KTOTrainer
(trl/trainer/kto_trainer.py, kto_config.py) and returns its log_history.

Options use tsdpo's names (src/train/kto.ts KTO_OPTIONS beside src/train/config.ts); TRL's data
handling is left to TRL: it unpairs preference rows (kto_trainer.py:1051-1056), appends EOS to text
completions (:1058-1069), drops rows whose prompt fills max_length (:1114-1117), builds the KL pairs
by rotating completions in blocks of per_device_train_batch_size (:1124-1134) and trains in data
order (kto_config.py:120, train_sampling_strategy "sequential").
"""
from trl_run import TSDPO_ONLY, load_policy, load_reference, load_rows, train_log_history, training_arguments

KTO_KEYS = ["beta", "loss_type", "desirable_weight", "undesirable_weight", "precompute_ref_log_probs",
            "precompute_ref_batch_size", "max_length", "disable_dropout", "train_sampling_strategy", "sync_ref_model",
            "ref_model_mixup_alpha", "ref_model_sync_steps"]
OTHER_KEYS = {"model_name_or_path", "dataset", "eval_dataset", "ref_model", "adapter", "use_peft", "lora_r", "lora_alpha",
              "lora_dropout", "lora_target_modules", "warmup_steps", "warmup_ratio", "optim", "eval_steps", "data_seed",
              "prompt_column", "completion_column", "label_column", "chosen_column", "rejected_column"}


def run_kto(cfg, out_dir, sampler_order):
    from transformers import AutoTokenizer
    from trl import KTOConfig, KTOTrainer

    unknown = set(cfg) - TSDPO_ONLY - set(KTO_KEYS) - OTHER_KEYS - set(training_arguments(cfg, out_dir))
    if unknown:
        raise ValueError(f"trl_kto.py: options {sorted(unknown)} have no TRL 1.13 KTOConfig equivalent here")
    args = training_arguments(cfg, out_dir)
    for k in KTO_KEYS:
        if k in cfg:
            args[k] = cfg[k]
    # tsdpo spells TRL's None as 0.
    for k in ["max_length", "precompute_ref_batch_size"]:
        if args.get(k) == 0:
            args[k] = None
    # Processes sharing the batch (an exported run): KTOTrainer rotates the KL completions within blocks of
    # per_device_train_batch_size when it builds the dataset, so it is built with the whole batch (tsdpo's
    # blocks) and each process then takes its share; the KL estimate is the mean over the processes' shares.
    share = args["per_device_train_batch_size"] if "per_device_train_batch_size" in cfg else None
    if share is not None and share != cfg["per_device_train_batch_size"]:
        args["per_device_train_batch_size"] = cfg["per_device_train_batch_size"]

    def take_share(trainer):
        if share is not None:
            trainer.args.per_device_train_batch_size = share
            trainer._train_batch_size = share

    model, peft_config = load_policy(cfg)
    tok = AutoTokenizer.from_pretrained(cfg["model_name_or_path"])
    names = {"prompt": "prompt", "completion": "completion", "label": "label", "chosen": "chosen", "rejected": "rejected"}

    def rows(path):
        data = load_rows(path)
        rename = {cfg.get(f"{c}_column", c): c for c in names if cfg.get(f"{c}_column", c) in data.column_names}
        return data.rename_columns({k: v for k, v in rename.items() if k != v})

    train = rows(cfg["dataset"])
    evals = rows(cfg["eval_dataset"]) if cfg.get("eval_dataset") else None

    return train_log_history(KTOTrainer, sampler_order, setup=take_share, model=model, ref_model=load_reference(cfg), args=KTOConfig(**args),
                             train_dataset=train, eval_dataset=evals, processing_class=tok, peft_config=peft_config)
