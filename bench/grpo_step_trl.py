"""Seconds per GRPO step of TRL 1.13's GRPOTrainer on CPU (the reference venv), sampling included, on
the demo model: the shapes of `npm run bench:grpo` (bench/grpo-step.ts). The reward is the completion's
length / max_completion_length (TRL has no AFINN reward; a reward's cost is small beside sampling and
the forward / backward passes). Usage: .venv-ref/bin/python bench/grpo_step_trl.py PROMPTS.jsonl [steps=4] [threads=1]"""
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import torch  # noqa: E402
import datasets  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

prompts, steps, threads = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4, int(sys.argv[3]) if len(sys.argv) > 3 else 1
torch.set_num_threads(threads)
demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "demo-model")
model = AutoModelForCausalLM.from_pretrained(demo, dtype=torch.float32)
tok = AutoTokenizer.from_pretrained(demo)
if tok.pad_token is None:
    tok.pad_token = tok.eos_token


def length(completion_ids, **kwargs):
    return [len(c) / 16 for c in completion_ids]


class StepTimes(TrainerCallback):
    def __init__(self):
        self.t = []

    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.t.append(time.perf_counter() - self.t0)


with tempfile.TemporaryDirectory() as out:
    args = GRPOConfig(output_dir=out, report_to="none", use_cpu=True, bf16=False, max_steps=steps, per_device_train_batch_size=16,
                      num_generations=8, max_completion_length=16, learning_rate=1e-3, logging_steps=1, save_strategy="no",
                      disable_tqdm=True, loss_type="grpo", disable_dropout=True)
    cb = StepTimes()
    trainer = GRPOTrainer(model=model, reward_funcs=[length], args=args, processing_class=tok,
                          train_dataset=datasets.load_dataset("json", data_files=prompts, split="train"), callbacks=[cb])
    trainer.train()
print({"engine": "TRL 1.13 GRPOTrainer (torch cpu)", "threads": threads, "step_seconds": [round(x, 3) for x in cb.t],
       "median": round(sorted(cb.t)[len(cb.t) // 2], 3)})
