#!/usr/bin/env python3
"""Loads folders that tsdpo wrote (a full model and a PEFT adapter) with transformers and peft, and
compares their sequence log-probs with the values tsdpo computed (expected.json beside them).
Run where transformers + peft exist (the GPU image). Prints one JSON line per check."""
import json, sys, os
import torch
from transformers import AutoModelForCausalLM

def seq_logps(model, rows):
    out = []
    for r in rows:
        ids = torch.tensor([r["input_ids"]]); m = torch.tensor([r["completion_mask"]], dtype=torch.float32)
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float()
        lp = logits[:, :-1].log_softmax(-1).gather(2, ids[:, 1:, None]).squeeze(2)
        out.append(float((lp * m[:, 1:]).sum()))
    return out

root = sys.argv[1]
exp = json.load(open(os.path.join(root, "expected.json")))
model = AutoModelForCausalLM.from_pretrained(os.path.join(root, "model"), attn_implementation="eager").float().eval()
got = seq_logps(model, exp["rows"])
err = max(abs(a - b) for a, b in zip(got, exp["model_logps"]))
print(json.dumps({"check": "tsdpo model folder in transformers", "max_abs_err": err, "ours": exp["model_logps"], "transformers": got}), flush=True)
if os.path.isdir(os.path.join(root, "adapter")):
    from peft import PeftModel
    base = AutoModelForCausalLM.from_pretrained(os.path.join(root, "model"), attn_implementation="eager").float().eval()
    pm = PeftModel.from_pretrained(base, os.path.join(root, "adapter")).eval()
    got = seq_logps(pm, exp["rows"])
    err = max(abs(a - b) for a, b in zip(got, exp["adapter_logps"]))
    print(json.dumps({"check": "tsdpo PEFT adapter in peft", "max_abs_err": err, "ours": exp["adapter_logps"], "peft": got}), flush=True)
