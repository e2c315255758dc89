"""TRL 1.13's GRPOTrainer and RLOOTrainer on fixed completions, for the parity tests of `tsdpo grpo`
and `tsdpo rloo` (test/reference/rl.test.ts). Sampling cannot match across engines, so generation is
replaced: the job's `completions` gives, per prompt (by its token ids joined with commas, as tsdpo
tokenized it: a different tokenization is a KeyError), the completion ids its rows get in turn. Everything after generation is TRL's own code: _generate (completion metrics),
_generate_and_score_completions (rewards, advantages, reference / old log-probs), _compute_loss,
the optimizer step and log().

Reward functions are named in the job (`rewards`): built-in deterministic functions of the
completion ids, mirrored by the JS module the test writes (`idsum`, `length`).

Besides log_history (the job's `out`), each job writes `debug_out`: the advantages of every
generation batch, the per-token log-probs of every training forward, and the trained parameters.

Registered in trl_run.py's TRAINERS as `grpo` and `rloo`.
"""
import json


def idsum(prompts, completions, completion_ids, **kwargs):
    """(sum of the ids mod 13) / 13 (the test's JS module computes the same)."""
    return [(sum(ids) % 13) / 13 for ids in completion_ids]


def length(prompts, completions, completion_ids, **kwargs):
    """Completion length / 10."""
    return [len(ids) / 10 for ids in completion_ids]


REWARDS = {"idsum": idsum, "length": length}

SHARED_KEYS = ["num_generations", "max_completion_length", "temperature", "beta", "epsilon", "epsilon_high",
               "num_iterations", "reward_weights", "mask_truncated_completions"]
KEYS = {"grpo": SHARED_KEYS + ["loss_type", "scale_rewards"],
        "rloo": SHARED_KEYS + ["normalize_advantages", "reward_clip_range"]}


def config_args(kind, cfg, out_dir):
    """GRPOConfig / RLOOConfig arguments of a tsdpo grpo / rloo config."""
    from trl_run import training_arguments

    args = training_arguments(cfg, out_dir)
    for k in KEYS[kind]:
        if k in cfg:
            args[k] = cfg[k]
    if args.get("epsilon_high", 0) < 0:
        args["epsilon_high"] = None
    if args.get("reward_weights") == []:
        args["reward_weights"] = None
    if args.get("reward_clip_range") == []:
        args["reward_clip_range"] = None
    elif args.get("reward_clip_range"):
        args["reward_clip_range"] = [float(x) for x in args["reward_clip_range"]]
    if "reward_weights" in args and args["reward_weights"]:
        args["reward_weights"] = [float(x) for x in args["reward_weights"]]
    # tsdpo has no dropout in the model itself (GRPOConfig's default keeps the model's).
    args["disable_dropout"] = True
    return args


def run(kind, cfg, out_dir, debug_out):
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer
    from trl_run import load_policy, load_rows, round_bf16, rounding_frozen

    Config, Trainer = {"grpo": (GRPOConfig, GRPOTrainer), "rloo": (RLOOConfig, RLOOTrainer)}[kind]
    args = config_args(kind, cfg, out_dir)
    model, peft_config = load_policy(cfg)
    tok = AutoTokenizer.from_pretrained(cfg["model_name_or_path"])
    train = load_rows(cfg["dataset"])
    fixed = cfg["completions"]  # "id,id,..." of a prompt -> its completions' ids
    debug = {"advantages": [], "logps": []}

    class Fixed(Trainer):
        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, has_tool_images=False):
            # GRPOTrainer's returns (completion_ids, logprobs), RLOOTrainer's the ids alone (rloo_trainer.py:1223).
            # Replaces sampling only: the i-th row of a prompt in this batch gets its i-th completion.
            seen = {}
            out = []
            for ids in prompt_ids:
                key = ",".join(str(int(i)) for i in ids)
                k = seen.get(key, 0)
                seen[key] = k + 1
                out.append(list(fixed[key][k]))
            return (out, None) if kind == "grpo" else out

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            debug["advantages"].append(output["advantages"].tolist())
            return output

        def _get_per_token_logps_and_entropies(self, *a, **kw):
            logps, ent, aux = super()._get_per_token_logps_and_entropies(*a, **kw)
            if kw.get("compute_entropy"):  # the training forward
                debug["logps"].append(logps.detach().tolist())
            return logps, ent, aux

    trainer = Fixed(model=model, reward_funcs=[REWARDS[r] for r in cfg["rewards"]], args=Config(**args),
                    train_dataset=train, processing_class=tok, peft_config=peft_config)
    if rounding_frozen() and trainer.ref_model is not None:  # a full fine-tuning's reference (TRL loads it itself)
        round_bf16(trainer.ref_model, "the reference")
    trainer.train()
    debug["params"] = {k: v.detach().float().flatten().tolist() for k, v in trainer.model.state_dict().items()}
    with open(debug_out, "w") as f:
        json.dump(debug, f)
    return trainer.state.log_history


def run_grpo(cfg, out_dir, sampler_order):
    return run("grpo", cfg, out_dir, cfg["debug_out"])


def run_rloo(cfg, out_dir, sampler_order):
    return run("rloo", cfg, out_dir, cfg["debug_out"])
