#!/usr/bin/env python3
"""PyTorch peer for the WebGPU benchmark (bench/gpu-dpo.ts), run on the GPU machine.

One DPO step as a transformers user runs it: GPT2LMHeadModel (random weights from a config, SDPA
attention) as policy + frozen reference, chosen and rejected in one batch of 2*pairs sequences,
completion-only summed log-probs, sigmoid DPO loss (beta 0.1), AdamW. Prints one JSON line per
configuration: median step seconds and tokens/s. Needs torch + transformers (the GPU image has both).
Usage: python3 torch_dpo_gpu.py [--preset gpt2-124m] [--pairs 16] [--seq 256] [--dtype bf16|fp32|autocast]
"""
import argparse, json, time
import torch, torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

PRESETS = {"gpt2-124m": (12, 768, 12), "gpt2-medium": (24, 1024, 16)}

def seq_logps(model, ids, mask):
    logits = model(input_ids=ids).logits[:, :-1]
    lp = logits.float().log_softmax(-1).gather(2, ids[:, 1:, None]).squeeze(2)
    return (lp * mask[:, 1:]).sum(-1)

def run(preset, pairs, seq, prompt, dtype, steps):
    L, d, h = PRESETS[preset]
    cfg = GPT2Config(n_layer=L, n_embd=d, n_head=h, vocab_size=50257, n_positions=1024, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    torch.manual_seed(0)
    pol = GPT2LMHeadModel(cfg, attn_implementation="sdpa").cuda()
    ref = GPT2LMHeadModel(cfg, attn_implementation="sdpa").cuda().eval().requires_grad_(False)
    if dtype == "bf16":
        pol, ref = pol.to(torch.bfloat16), ref.to(torch.bfloat16)
    opt = torch.optim.AdamW(pol.parameters(), lr=1e-6)
    B = 2 * pairs
    ids = torch.randint(0, 50257, (B, seq), device="cuda")
    mask = torch.zeros(B, seq, device="cuda"); mask[:, prompt:] = 1
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(dtype == "autocast")):
            lp = seq_logps(pol, ids, mask)
            with torch.no_grad():
                rlp = seq_logps(ref, ids, mask)
        dl = (lp[:pairs] - rlp[:pairs]) - (lp[pairs:] - rlp[pairs:])
        loss = -F.logsigmoid(0.1 * dl).mean()
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return loss
    for _ in range(3): step()
    torch.cuda.synchronize()
    ts = []
    for _ in range(steps):
        t = time.perf_counter(); step().item(); torch.cuda.synchronize(); ts.append(time.perf_counter() - t)
    ts.sort(); med = ts[len(ts) // 2]
    return dict(engine="pytorch-" + torch.__version__, device=torch.cuda.get_device_name(), preset=preset, dtype=dtype,
                pairs=pairs, seq=seq, step_s=round(med, 5), tokens_per_s=round(B * seq / med, 1))

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt2-124m", choices=PRESETS)
    ap.add_argument("--pairs", type=int, default=16); ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=128); ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dtype", default="all")
    a = ap.parse_args()
    for dt in (["bf16", "autocast", "fp32"] if a.dtype == "all" else [a.dtype]):
        print(json.dumps(run(a.preset, a.pairs, a.seq, a.prompt, dt, a.steps)), flush=True)
