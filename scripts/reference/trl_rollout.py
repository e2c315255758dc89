"""GRPO and RLOO as an exported run (`tsdpo export --trainer grpo|rloo`): TRL 1.13's GRPOTrainer /
RLOOTrainer sampling their own completions, with the rewards of the tsdpo config. trl_run.py's
`grpo` / `rloo` trainers come here when the job has no fixed `completions` (those are the parity
tests', trl_grpo.py).

reward_funcs: `sentiment` is tsdpo's demo reward ported to Python (sigmoid of the AFINN-165 score / 2
of the completion, with the npm package `sentiment`'s tokenizer and negation rule; its lexicon is in
sentiment/ beside this file); a folder is a reward model TRL loads (*ForSequenceClassification).
"""
import json
import math
import os
import re

_LEXICON = {}


def _lexicon():
    if not _LEXICON:
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sentiment")
        for name in ["labels", "negators"]:
            with open(os.path.join(here, f"{name}.json")) as f:
                _LEXICON[name] = json.load(f)
    return _LEXICON["labels"], _LEXICON["negators"]


def afinn_score(text):
    """The AFINN-165 score of text as the npm package `sentiment` 5 computes it (tsdpo's sentimentScore)."""
    labels, negators = _lexicon()
    text = re.sub(r"[.,/#!?$%^&*;:{}=_`\"~()]", " ", text.lower().replace("\n", " "))
    tokens = re.sub(r"\s\s+", " ", text).strip().split(" ")
    score = 0
    for i, tok in enumerate(tokens):
        if tok in labels:
            score += -labels[tok] if i > 0 and negators.get(tokens[i - 1]) else labels[tok]
    return score


def sentiment(completions, **kwargs):
    """tsdpo's `sentiment` reward of each completion: sigmoid(AFINN score / 2), in (0, 1)."""
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [1 / (1 + math.exp(-afinn_score(t) / 2)) for t in texts]


REWARDS = {"sentiment": sentiment}


def run_sampled(kind, cfg, out_dir):
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer
    from trl_grpo import config_args
    from trl_run import load_policy, load_rows, train

    Config, Trainer = {"grpo": (GRPOConfig, GRPOTrainer), "rloo": (RLOOConfig, RLOOTrainer)}[kind]
    args = config_args(kind, cfg, out_dir)
    for k in ["top_p", "top_k", "disable_dropout"]:
        if k in cfg:
            args[k] = cfg[k]
    model, peft_config = load_policy(cfg)
    tok = AutoTokenizer.from_pretrained(cfg["model_name_or_path"])
    train_rows = load_rows(cfg["dataset"])
    column = cfg.get("prompt_column", "prompt")
    if column != "prompt":
        train_rows = train_rows.rename_column(column, "prompt")
    funcs = [REWARDS[r] if r in REWARDS else r for r in cfg.get("reward_funcs", ["sentiment"])]
    trainer = Trainer(model=model, reward_funcs=funcs, args=Config(**args), train_dataset=train_rows,
                      processing_class=tok, peft_config=peft_config)
    train(trainer)
    if os.environ.get("TSDPO_SAVE_MODEL") == "1":
        trainer.save_model()
    return trainer.state.log_history
