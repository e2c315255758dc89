"""Rollout throughput of transformers' generate on the demo model (the reference venv's torch, CPU),
with the shapes of bench/rollout.ts: B prompts of 8 tokens x N new tokens, sampled at temperature 1,
no early stop at EOS. Usage: .venv-ref/bin/python bench/rollout_hf.py [B=64] [N=48] [threads=1]"""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

B, N, threads = (int(sys.argv[i]) if len(sys.argv) > i else d for i, d in [(1, 64), (2, 48), (3, 1)])
torch.set_num_threads(threads)
model = AutoModelForCausalLM.from_pretrained(os.path.join(os.path.dirname(__file__), "..", "assets", "demo-model"), dtype=torch.float32)
ids = torch.tensor([[(b * 31 + t * 7) % 2000 for t in range(8)] for b in range(B)])
kw = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, pad_token_id=model.config.eos_token_id)
model.generate(ids[:4], max_new_tokens=4, min_new_tokens=4, **kw)  # warm-up
t0 = time.perf_counter()
out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=N, min_new_tokens=N, **kw)
secs = time.perf_counter() - t0
tokens = (out.shape[1] - ids.shape[1]) * B
print(json.dumps({"engine": "transformers generate (torch cpu)", "B": B, "N": N, "threads": threads, "tokens": tokens,
                  "seconds": round(secs, 3), "tokens_per_second": round(tokens / secs)}))
