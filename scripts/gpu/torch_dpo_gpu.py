#!/usr/bin/env python3
"""PyTorch peer for the WebGPU benchmark (bench/gpu-dpo.ts), run on the GPU machine.

One DPO step as a transformers user runs it: the model (random weights from a config, SDPA
attention) as policy + frozen reference, chosen and rejected in one batch of 2*pairs sequences,
completion-only summed log-probs, sigmoid DPO loss (beta 0.1), AdamW. Prints one JSON line per
configuration: median step seconds, tokens/s and model TFLOP/s counted as bench/gpu-dpo.ts counts
them (policy forward + backward = 3 forwards, reference 1 forward; 3 in all with LoRA).
Precisions: fp32 (TF32 off: exact float32 matmuls on the CUDA cores), tf32 (float32 with TF32
tensor-core matmuls), autocast (bf16 autocast over float32 weights), bf16 (weights in bf16).
--lora R: a rank-R LoRA (q_proj + v_proj; c_attn on GPT-2) written here as two Linear layers per
target, the reference being the same model with the adapter off (as TRL with peft).
--head completion: the LM head on the completion positions only (what bench/gpu-dpo.ts --head
completion does); all: on every position (what transformers' forward does).
Usage: python3 torch_dpo_gpu.py [--preset gpt2-124m] [--pairs 16] [--seq 256] [--dtype all|fp32,tf32,...]
"""
import argparse, json, time
import torch, torch.nn as nn, torch.nn.functional as F
import transformers

PRESETS = {
    "gpt2-124m": ("gpt2", dict(n_layer=12, n_embd=768, n_head=12)),
    "gpt2-medium": ("gpt2", dict(n_layer=24, n_embd=1024, n_head=16)),
    "qwen2.5-0.5b": ("qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                                   num_key_value_heads=2, vocab_size=151936, rms_norm_eps=1e-6, rope_theta=1e6,
                                   tie_word_embeddings=True, max_position_embeddings=32768)),
}
DTYPES = ["fp32", "tf32", "autocast", "bf16"]
DEV = "cuda" if torch.cuda.is_available() else "cpu"  # the CPU only to try the script on small shapes


def sync():
    if DEV == "cuda": torch.cuda.synchronize()


def make_model(preset):
    kind, kw = PRESETS[preset]
    if kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=50257, n_positions=1024, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, **kw)
        cfg._attn_implementation = "sdpa"
        return transformers.GPT2LMHeadModel(cfg), ["c_attn"]
    cfg = transformers.Qwen2Config(attention_dropout=0.0, **kw)
    cfg._attn_implementation = "sdpa"
    return transformers.Qwen2ForCausalLM(cfg), ["q_proj", "v_proj"]


class LoraLinear(nn.Module):
    """base(x) + scaling * B(A(x)), the base frozen; `enabled` off gives the base alone."""
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.enabled, self.scaling = base, True, alpha / r
        w = base.weight  # GPT-2's Conv1D stores (in, out)
        fin, fout = (w.shape[0], w.shape[1]) if type(base).__name__ == "Conv1D" else (w.shape[1], w.shape[0])
        self.A = nn.Linear(fin, r, bias=False, device=w.device, dtype=w.dtype)
        self.B = nn.Linear(r, fout, bias=False, device=w.device, dtype=w.dtype)
        nn.init.zeros_(self.B.weight)

    def forward(self, x):
        y = self.base(x)
        return y + self.B(self.A(x)) * self.scaling if self.enabled else y


def add_lora(model, targets, r):
    model.requires_grad_(False)
    loras = []
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            if child_name in targets:
                l = LoraLinear(child, r, 2 * r)
                setattr(mod, child_name, l)
                loras.append(l)
    return loras


def step_flops(model, pairs, seq, head_rows, forwards):
    linear = sum(p.numel() for n, p in model.named_parameters()
                 if p.ndim == 2 and not any(k in n for k in ("wte", "wpe", "embed_tokens", "lm_head", ".A.", ".B.")))
    c = model.config
    C, V, L, H = c.hidden_size, c.vocab_size, c.num_hidden_layers, c.num_attention_heads
    per_token = 2 * linear + L * 4 * H * (C // H) * (seq + 1) / 2
    return forwards * (2 * pairs * seq * per_token + head_rows * 2 * C * V)


def run(preset, pairs, seq, prompt, dtype, steps, lora_r, head):
    torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
    torch.backends.cudnn.allow_tf32 = dtype == "tf32"
    torch.set_float32_matmul_precision("high" if dtype == "tf32" else "highest")
    torch.manual_seed(0)
    pol, targets = make_model(preset)
    pol = pol.to(DEV)
    loras = add_lora(pol, targets, lora_r) if lora_r else []
    ref = None
    if not lora_r:
        ref = make_model(preset)[0].to(DEV).eval().requires_grad_(False)
    if dtype == "bf16":
        pol = pol.to(torch.bfloat16)
        ref = ref.to(torch.bfloat16) if ref is not None else None
    opt = torch.optim.AdamW([p for p in pol.parameters() if p.requires_grad], lr=1e-6, weight_decay=0.01)
    B, V = 2 * pairs, pol.config.vocab_size
    ids = torch.randint(0, V, (B, seq), device=DEV)
    start = prompt - 1 if head == "completion" else 0  # first position whose logits predict a completion token
    mask = torch.zeros(B, seq - 1, device=DEV); mask[:, prompt - 1:] = 1

    def seq_logps(model, adapter=True):
        for l in loras: l.enabled = adapter
        hidden = model.model(input_ids=ids).last_hidden_state if hasattr(model, "model") else model.transformer(input_ids=ids).last_hidden_state
        logits = model.lm_head(hidden[:, start:-1])
        lp = logits.float().log_softmax(-1).gather(2, ids[:, start + 1:, None]).squeeze(2)
        return (lp * mask[:, start:]).sum(-1)

    def step():
        with torch.autocast(DEV, dtype=torch.bfloat16, enabled=(dtype == "autocast")):
            with torch.no_grad():
                rlp = seq_logps(ref) if ref is not None else seq_logps(pol, adapter=False)
            lp = seq_logps(pol)
        dl = (lp[:pairs] - rlp[:pairs]) - (lp[pairs:] - rlp[pairs:])
        loss = -F.logsigmoid(0.1 * dl).mean()
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(3): step()
    sync()
    if DEV == "cuda": torch.cuda.reset_peak_memory_stats()
    ts = []
    for _ in range(steps):
        t = time.perf_counter(); step().item(); sync(); ts.append(time.perf_counter() - t)
    ts.sort(); med = ts[len(ts) // 2]
    head_rows = B * (seq - 1 - start)
    flops = step_flops(pol, pairs, seq, head_rows, 3 if lora_r else 4)
    return dict(engine="pytorch-" + torch.__version__, transformers=transformers.__version__, device=torch.cuda.get_device_name() if DEV == "cuda" else "cpu",
                preset=preset, dtype=dtype, lora=lora_r, head=head, pairs=pairs, seq=seq, prompt=prompt, step_s=round(med, 5),
                tokens_per_s=round(B * seq / med, 1), tflops=round(flops / med / 1e12, 2),
                peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if DEV == "cuda" else None)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt2-124m", choices=PRESETS)
    ap.add_argument("--pairs", type=int, default=16); ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--prompt", type=int, default=64); ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lora", type=int, default=0); ap.add_argument("--head", default="all", choices=["all", "completion"])
    ap.add_argument("--dtype", default="all", help="all, or a comma-separated list of " + ", ".join(DTYPES))
    a = ap.parse_args()
    for dt in (DTYPES if a.dtype == "all" else a.dtype.split(",")):
        try:
            print(json.dumps(run(a.preset, a.pairs, a.seq, a.prompt, dt, a.steps, a.lora, a.head)), flush=True)
        except Exception as e:  # one failing precision must not hide the others
            print(json.dumps(dict(engine="pytorch", preset=a.preset, dtype=dt, error=repr(e)[:300])), flush=True)
        if DEV == "cuda": torch.cuda.empty_cache()
