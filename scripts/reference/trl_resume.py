"""A tsdpo checkpoint as a TRL / transformers checkpoint, for `resume_from_checkpoint` (trl_run.py
--resume_from_checkpoint; an exported run's `launch.sh --resume_from_checkpoint DIR`).

tsdpo's checkpoint-N/ holds the weights (a Hugging Face folder), optimizer.safetensors (AdamW's
exp_avg / exp_avg_sq of each parameter as `<name>.0` / `<name>.1`, float32) and its own
trainer_state.json (global_step, epoch, optimizer_step, log_history, sampler). transformers' Trainer
resumes from the weights, optimizer.pt (torch's AdamW state_dict over the Trainer's two parameter
groups: decayed, then not decayed), scheduler.pt (the LR schedule after N steps) and its
TrainerState JSON. What carries over: the weights, the AdamW moments and step count, the schedule
position, global_step, epoch and log_history. What does not: the random-number state (tsdpo's
generators are not torch's; with dropout off nothing random remains) and tsdpo's sampler position
within an epoch (TRL replays its own order and skips the batches already trained on). AdamW
runs only (all weights, or a LoRA adapter: tsdpo's <module>.lora_A is PEFT's
base_model.model.<module>.lora_A.default.weight); another optimizer is refused, naming why.
"""
import json
import math
import os
import re
import shutil

TSDPO_ONLY_FILES = {"trainer_state.json", "optimizer.safetensors"}


def is_tsdpo_checkpoint(path):
    """A checkpoint written by tsdpo: its trainer_state.json has tsdpo's optimizer_step and sampler."""
    try:
        with open(os.path.join(path, "trainer_state.json")) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return False
    return "optimizer_step" in state and "sampler" in state


def _training_steps(trainer):
    """The run's optimizer steps (max_steps, else epochs x updates per epoch), as Trainer computes them."""
    args = trainer.args
    if args.max_steps > 0:
        return args.max_steps
    per_epoch = max(len(trainer.get_train_dataloader()) // args.gradient_accumulation_steps, 1)
    return math.ceil(args.num_train_epochs * per_epoch)


def convert(trainer, src, dst):
    """Writes dst: src's weights plus optimizer.pt, scheduler.pt and trainer_state.json for `trainer`."""
    import torch
    from safetensors.torch import load_file
    from transformers import Trainer, TrainerState
    from transformers.trainer_callback import ExportableState
    from transformers.optimization import get_scheduler

    with open(os.path.join(src, "trainer_state.json")) as f:
        ts = json.load(f)
    config = ts.get("config", {})
    if config.get("optim", "adamw") not in ("adamw", "adamw_torch"):
        raise ValueError(f"{src}: optim {config['optim']}: only AdamW state converts (torch's AdamW state_dict)")
    model = trainer.model
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = set(trainer.get_decay_parameter_names(model))
    groups = [[n for n, _ in named if n in decay], [n for n, _ in named if n not in decay]]
    moments = load_file(os.path.join(src, "optimizer.safetensors"))
    copies = {n: torch.nn.Parameter(p.detach().clone()) for n, p in named}
    lora = os.path.exists(os.path.join(src, "adapter_config.json"))
    if lora != hasattr(model, "peft_config"):
        raise ValueError(f"{src}: a {'LoRA' if lora else 'full-weight'} checkpoint, but this run trains "
                         f"{'all weights' if lora else 'a LoRA adapter'} (use_peft / adapter in config.json)")
    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(trainer.args, model)
    opt = cls([{"params": [copies[n] for n in g], "weight_decay": wd} for g, wd in zip(groups, [trainer.args.weight_decay, 0.0])], **kwargs)
    step = int(ts["optimizer_step"])
    def tsdpo_name(n):
        # PEFT's base_model.model.<path>.lora_A.default.weight is tsdpo's <path>.lora_A (src/models/lora.ts).
        if not lora:
            return n
        return re.sub(r"\.(lora_[AB])\.default\.weight$", r".\1", n.removeprefix("base_model.model."))

    for p_name, p in copies.items():
        n = tsdpo_name(p_name)
        if f"{n}.0" not in moments:
            raise ValueError(f"{src}/optimizer.safetensors: no state for parameter {n} (tied or renamed weights?); it holds "
                             f"{len(moments) // 2} parameters, the model {len(copies)}")
        opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": moments[f"{n}.0"].reshape(p.shape).clone(),
                        "exp_avg_sq": moments[f"{n}.1"].reshape(p.shape).clone()}
    total = _training_steps(trainer)
    sched = get_scheduler(trainer.args.lr_scheduler_type, optimizer=opt, num_warmup_steps=trainer.args.get_warmup_steps(total),
                          num_training_steps=total, scheduler_specific_kwargs=trainer.args.lr_scheduler_kwargs)
    import warnings
    with warnings.catch_warnings():  # stepping the schedule without optimizer steps is what we mean here
        warnings.simplefilter("ignore")
        for _ in range(int(ts["global_step"])):
            sched.step()
    tmp = dst + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=lambda d, names: [x for x in names if x in TSDPO_ONLY_FILES])
    torch.save(opt.state_dict(), os.path.join(tmp, "optimizer.pt"))
    torch.save(sched.state_dict(), os.path.join(tmp, "scheduler.pt"))
    state = TrainerState(epoch=ts["epoch"], global_step=int(ts["global_step"]), max_steps=total,
                         logging_steps=trainer.args.logging_steps, eval_steps=trainer.args.eval_steps,
                         save_steps=trainer.args.save_steps, train_batch_size=trainer._train_batch_size,
                         num_train_epochs=math.ceil(trainer.args.num_train_epochs), log_history=ts.get("log_history", []),
                         stateful_callbacks=[cb for cb in trainer.callback_handler.callbacks + [trainer.control]
                                             if isinstance(cb, ExportableState)])
    state.save_to_json(os.path.join(tmp, "trainer_state.json"))
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)


def _cpu_map_location():
    """transformers 5.17 loads a multi-process run's optimizer.pt with map_location=args.device, which is
    torch.device("cpu", 0) for CPU processes, and torch.load cannot restore onto "cpu:0": map it to "cpu"."""
    import torch
    if getattr(torch.load, "_tsdpo_cpu", False):
        return
    load = torch.load

    def patched(*a, map_location=None, **kw):
        if isinstance(map_location, torch.device) and map_location.type == "cpu":
            map_location = "cpu"
        return load(*a, map_location=map_location, **kw)

    patched._tsdpo_cpu = True
    torch.load = patched


def resume_path(trainer, path):
    """`path` for Trainer.train(resume_from_checkpoint=...): a TRL checkpoint as is, a tsdpo one converted
    (by the main process, into output_dir/tsdpo-<name>) first."""
    if not path:
        return path
    if trainer.args.device.type == "cpu":
        _cpu_map_location()
    if not is_tsdpo_checkpoint(path):
        return path
    dst = os.path.join(trainer.args.output_dir, "tsdpo-" + os.path.basename(os.path.normpath(path)))
    if trainer.accelerator.is_main_process:
        convert(trainer, path, dst)
    trainer.accelerator.wait_for_everyone()
    return dst
