"""TRL 1.13's SFTTrainer for the reference harness (registered in trl_run.py's TRAINERS as "sft").

Options use tsdpo's names (src/train/config.ts, SFT_OPTIONS); the shared TrainingArguments part
comes from trl_run.training_arguments."""

SFT_KEYS = ["max_length", "truncation_mode", "completion_only_loss", "assistant_only_loss", "dataset_text_field",
            "packing", "packing_strategy", "padding_free", "pad_to_multiple_of", "eos_token", "loss_type", "eval_packing",
            "pad_token", "shuffle_dataset", "activation_offloading", "dataset_num_proc", "chat_template_path"]


def run_sft(cfg, out_dir, sampler_order):
    import trl_run as base
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    cfg = dict(cfg)
    unknown = set(cfg) - base.TSDPO_ONLY - set(SFT_KEYS) - {
        "model_name_or_path", "dataset", "eval_dataset", "adapter", "use_peft", "lora_r", "lora_alpha", "lora_dropout",
        "lora_target_modules", "warmup_steps", "warmup_ratio", "optim", "eval_steps", "data_seed", "prompt_column",
        "disable_dropout"} - set(base.training_arguments(cfg, out_dir))
    if unknown:
        raise ValueError(f"trl_run.py sft: options {sorted(unknown)} have no TRL 1.13 SFTConfig equivalent here")
    args = base.training_arguments(cfg, out_dir)
    for k in SFT_KEYS:
        if k in cfg:
            args[k] = cfg[k]
    # tsdpo spells TRL's None as 0 (max_length, pad_to_multiple_of) or "" (eos_token).
    for k, off in [("max_length", 0), ("pad_to_multiple_of", 0), ("eos_token", ""), ("pad_token", ""), ("eval_packing", ""),
                   ("dataset_num_proc", 0), ("chat_template_path", "")]:
        if k in args and args[k] == off:
            args[k] = None
    if args.get("eval_packing") is not None:
        args["eval_packing"] = args["eval_packing"] == "true"
    model, peft_config = base.load_policy(cfg)
    tok = AutoTokenizer.from_pretrained(cfg["model_name_or_path"])
    train = base.load_rows(cfg["dataset"])
    if cfg.get("prompt_column", "prompt") != "prompt" and cfg["prompt_column"] in train.column_names:
        train = train.rename_column(cfg["prompt_column"], "prompt")
    evals = base.load_rows(cfg["eval_dataset"]) if cfg.get("eval_dataset") else None

    return base.train_log_history(SFTTrainer, sampler_order, model=model, args=SFTConfig(**args), train_dataset=train,
                                  eval_dataset=evals, processing_class=tok, peft_config=peft_config)
