#!/usr/bin/env python3
"""CPU peer with the real stack: transformers GPT2LMHeadModel (SDPA attention) + torch AdamW, one DPO step
(policy + frozen reference, chosen/rejected in one batch, completion-only summed log-probs, sigmoid loss).
Same shapes as bench:dpo presets; `npm run bench:dpo -- --compare` runs it with the reference venv
(torch 2.13 + transformers 5.17: bash scripts/reference/setup-venv.sh).
Prints one JSON line: median step seconds, tokens/s, peak RSS MiB."""
import argparse, json, os, resource, time
import torch, torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

PRESETS = {"tiny": (2, 128, 4, 4096, 256), "small": (4, 256, 8, 8192, 512), "gpt2": (12, 768, 12, 50257, 1024)}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small", choices=PRESETS)
    ap.add_argument("--pairs", type=int, default=4); ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=64); ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1); ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    L, d, h, V, ctx = PRESETS[a.preset]
    cfg = GPT2Config(n_layer=L, n_embd=d, n_head=h, vocab_size=V, n_positions=ctx, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
    pol = GPT2LMHeadModel._from_config(cfg, attn_implementation=a.attn)
    ref = GPT2LMHeadModel._from_config(cfg, attn_implementation=a.attn); ref.load_state_dict(pol.state_dict()); ref.requires_grad_(False); ref.eval()
    pol.train()
    fwd_p, fwd_r = pol, ref
    if a.compile: fwd_p, fwd_r = torch.compile(pol), torch.compile(ref)
    opt = torch.optim.AdamW(pol.parameters(), lr=1e-6)
    B = 2 * a.pairs
    ids = torch.randint(0, V, (B, a.seq)); mask = torch.zeros(B, a.seq); mask[:, a.prompt:] = 1
    def logps(m, ids):
        logits = m(input_ids=ids, use_cache=False).logits[:, :-1]
        lp = logits.log_softmax(-1).gather(2, ids[:, 1:, None]).squeeze(2)
        return (lp * mask[:, 1:]).sum(-1)
    def step():
        with torch.no_grad(): rlp = logps(fwd_r, ids)
        lp = logps(fwd_p, ids)
        d_ = (lp[:a.pairs] - rlp[:a.pairs]) - (lp[a.pairs:] - rlp[a.pairs:])
        loss = -F.logsigmoid(0.1 * d_).mean(); loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return loss.item()
    step(); step() if a.compile else None
    ts = []
    for _ in range(a.steps):
        t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
    ts.sort(); med = ts[len(ts) // 2]
    print(json.dumps(dict(engine=f"hf-transformers-{a.attn}{'-compile' if a.compile else ''}-torch{torch.__version__}", preset=a.preset,
        pairs=a.pairs, seq=a.seq, threads=a.threads, step_s=round(med, 4), tokens_per_s=round(B * a.seq / med, 1),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))))

if __name__ == "__main__":
    main()
