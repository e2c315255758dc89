"""TRL 1.13's RewardTrainer as trl_run.py's `reward` trainer, plus two helpers for the parity tests.

A job's config uses tsdpo's option names (src/train/reward-config.ts). Besides the log_history, a job
may ask for scores: "score_rows" (texts, encoded as the RewardTrainer encodes a text row: the string as
given, the tokenizer's special tokens added) are scored with TRL's trained model and with each folder of
"score_dirs" loaded by transformers (AutoModelForSequenceClassification, or a PEFT adapter on the base
model), and written as JSON to "scores_out".

  python scripts/reference/trl_reward.py make-seqcls SRC DST SEED
makes a one-label *ForSequenceClassification folder from the causal LM folder SRC (a new score head
drawn by torch with SEED, the tokenizer files copied), so that both sides can start from the same weights.
  python scripts/reference/trl_reward.py make-lora SEQCLS DST SEED
saves a LoRA adapter of that classifier (r 4, alpha 8 on q_proj / v_proj, both factors random, a perturbed
copy of the score head in modules_to_save, PEFT's SEQ_CLS task) for both sides to continue.
"""
import json
import os
import shutil
import sys

REWARD_KEYS = ["max_length", "center_rewards_coefficient", "disable_dropout"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]


def score_texts(model, tok, texts):
    """The one-label score of each text, one at a time (no padding), as transformers pools it."""
    import torch
    out = []
    model.eval()
    with torch.no_grad():
        for t in texts:
            ids = tok(text=t, return_tensors="pt")
            out.append(model(**ids).logits[0, 0].item())
    return out


def load_folder(path):
    """A saved reward model: a *ForSequenceClassification folder, or a PEFT adapter on its base model."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    if os.path.exists(os.path.join(path, "adapter_config.json")):
        from peft import PeftModel
        with open(os.path.join(path, "adapter_config.json")) as f:
            base_dir = json.load(f)["base_model_name_or_path"]
        base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, dtype=torch.float32, attn_implementation="eager")
        tok = AutoTokenizer.from_pretrained(base_dir)
        base.config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        return PeftModel.from_pretrained(base, path), tok
    model, info = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise ValueError(f"{path}: transformers reports {bad}")
    return model, AutoTokenizer.from_pretrained(path)


def run_reward(cfg, out_dir, sampler_order):
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import RewardConfig, RewardTrainer
    from trl_run import TSDPO_ONLY, FixedOrderSampler, load_rows, training_arguments

    unknown = set(cfg) - TSDPO_ONLY - set(REWARD_KEYS) - {
        "model_name_or_path", "dataset", "eval_dataset", "adapter", "use_peft", "lora_r", "lora_alpha", "lora_dropout",
        "lora_target_modules", "warmup_steps", "warmup_ratio", "optim", "eval_steps", "data_seed", "prompt_column",
        "chosen_column", "rejected_column", "margin_column", "score_rows", "score_dirs", "scores_out",
    } - set(training_arguments(cfg, out_dir))
    if unknown:
        raise ValueError(f"trl_reward.py: options {sorted(unknown)} have no TRL 1.13 RewardConfig equivalent here")
    args = training_arguments(cfg, out_dir)
    for k in REWARD_KEYS:
        if k in cfg:
            args[k] = cfg[k]
    if args.get("max_length") == 0:
        args["max_length"] = None
    if not args.get("center_rewards_coefficient"):
        args["center_rewards_coefficient"] = None  # tsdpo's 0 = off
    # RewardTrainer loads the folder itself (seeded, num_labels 1, float32); eager attention as the DPO runs.
    args["model_init_kwargs"] = {"attn_implementation": "eager"}
    peft_config = None
    if cfg.get("use_peft"):
        targets = cfg.get("lora_target_modules", ["q_proj", "v_proj"])
        peft_config = LoraConfig(r=cfg.get("lora_r", 16), lora_alpha=cfg.get("lora_alpha", 32),
                                 lora_dropout=cfg.get("lora_dropout", 0.05), task_type="SEQ_CLS", modules_to_save=["score"],
                                 target_modules="all-linear" if targets == ["all-linear"] else targets)
    tok = AutoTokenizer.from_pretrained(cfg["model_name_or_path"])
    rename = {cfg.get(f"{c}_column", c): c for c in ["prompt", "chosen", "rejected", "margin"]}
    train = load_rows(cfg["dataset"])
    train = train.rename_columns({k: v for k, v in rename.items() if k != v and k in train.column_names})
    evals = load_rows(cfg["eval_dataset"]) if cfg.get("eval_dataset") else None

    class Trainer(RewardTrainer):
        def _get_train_sampler(self, train_dataset=None):
            return FixedOrderSampler(sampler_order) if sampler_order else super()._get_train_sampler(train_dataset)

    model = cfg["model_name_or_path"]
    if cfg.get("adapter"):
        import torch
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification
        base = AutoModelForSequenceClassification.from_pretrained(model, dtype=torch.float32, attn_implementation="eager")
        model = PeftModel.from_pretrained(base, cfg["adapter"], is_trainable=True)
        del args["model_init_kwargs"]
    trainer = Trainer(model=model, args=RewardConfig(**args), train_dataset=train, eval_dataset=evals,
                      processing_class=tok, peft_config=peft_config)
    from trl_run import train
    train(trainer)
    if os.environ.get("TSDPO_SAVE_MODEL") == "1":  # --output_dir: keep the trained model there
        trainer.save_model()
    if cfg.get("scores_out"):
        texts = cfg["score_rows"]
        scores = {"trl": score_texts(trainer.model, trainer.processing_class, texts)}
        for d in cfg.get("score_dirs", []):
            model, dtok = load_folder(d)
            scores[d] = score_texts(model, dtok, texts)
        with open(cfg["scores_out"], "w") as f:
            json.dump(scores, f)
    return trainer.state.log_history


def make_seqcls(src, dst, seed):
    """A one-label classifier from a causal LM folder, as AutoModelForSequenceClassification makes it."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    set_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(src)
    model.config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model.save_pretrained(dst)
    for f in TOKENIZER_FILES:
        if os.path.exists(os.path.join(src, f)):
            shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))


def make_lora(src, dst, seed):
    """A LoRA adapter of a classifier folder: random A and B (init_lora_weights False), a perturbed score head."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, set_seed
    model = AutoModelForSequenceClassification.from_pretrained(src, dtype=torch.float32)
    set_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, task_type="SEQ_CLS",
                        modules_to_save=["score"], init_lora_weights=False)
    peft = get_peft_model(model, config)
    with torch.no_grad():  # the saved head differs from the base's, so a side that ignores it fails
        for name, p in peft.named_parameters():
            if "modules_to_save" in name:
                p.add_(0.1 * torch.randn_like(p))
    peft.save_pretrained(dst)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    makers = {"make-seqcls": make_seqcls, "make-lora": make_lora}
    if len(sys.argv) == 5 and sys.argv[1] in makers:
        makers[sys.argv[1]](sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
