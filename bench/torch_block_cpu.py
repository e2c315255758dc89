#!/usr/bin/env python3
"""PyTorch peer of `npm run bench:kernels -- gpt2_block`: forward + backward of one GPT-2-small block
(batch 4, seq 256, d 768, 12 heads, pre-LayerNorm, tanh-GELU, causal attention written out, since
Debian's PyTorch 1.13 has no scaled_dot_product_attention). Prints best and median seconds of 10 runs.

Run with Debian's interpreter:  OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_block_cpu.py 1
"""
import sys, time
import torch, torch.nn as nn, torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
B, T, C, H = 4, 256, 768, 12
ln1, ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
qkv, proj, fc, out = nn.Linear(C, 3 * C), nn.Linear(C, C), nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
params = [p for m in (ln1, ln2, qkv, proj, fc, out) for p in m.parameters()]
x = torch.randn(B, T, C)
future = torch.ones(T, T, dtype=torch.bool).triu(1)

def step():
    q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in qkv(ln1(x)).split(C, 2))  # (B, H, T, hs)
    att = ((q @ k.transpose(-2, -1)) / (C // H) ** 0.5).masked_fill(future, float("-inf")).softmax(-1)
    x1 = x + proj((att @ v).transpose(1, 2).reshape(B, T, C))
    (x1 + out(F.gelu(fc(ln2(x1)), approximate="tanh"))).sum().backward()
    for p in params:
        p.grad = None

for _ in range(3):
    step()
times = []
for _ in range(10):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
print(f'{{"bench": "gpt2_block_fwd_bwd", "engine": "pytorch-{torch.__version__}", "threads": {threads}, "seconds": {times[0]:.4f}, "median_seconds": {times[5]:.4f}}}')
