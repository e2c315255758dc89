"""Loads model folders that tsdpo wrote with transformers (and peft for an adapter) and writes the
logits of given token ids, so that tests can check that the Python stack reads tsdpo's output as
tsdpo does. Local folders only (HF_HUB_OFFLINE is set before transformers loads).

Usage: python scripts/reference/logits.py --jobs jobs.json
where jobs.json is a list of {"model": dir, "adapter": dir or null, "input_ids": [[...]], "out": file};
each out file gets {"logits": [...], "shape": [B, T, V], "model_class": name}.
"""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", required=True)
    a = p.parse_args()
    import torch
    from transformers import AutoModelForCausalLM

    with open(a.jobs) as f:
        jobs = json.load(f)
    for job in jobs:
        model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=torch.float32, attn_implementation="eager")
        if job.get("adapter"):
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, job["adapter"])
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=torch.tensor(job["input_ids"])).logits
        with open(job["out"], "w") as f:
            json.dump({"logits": logits.flatten().tolist(), "shape": list(logits.shape),
                       "model_class": type(model).__name__}, f)


if __name__ == "__main__":
    main()
