"""Builds a random-weight checkpoint with Qwen2.5-0.5B's shape (494M parameters at 24 layers,
151,936-token vocabulary, tied embeddings, bf16 safetensors) and a preference dataset, for
`npm run bench:memory`. Seeded; nothing is downloaded. The tokenizer is the demo model's (its ids
are a subset of the vocabulary), so that tsdpo and TRL read the same files.

  .venv-ref/bin/python bench/make_qwen_like.py --out /tmp/qwen-like --layers 24
  .venv-ref/bin/python bench/make_qwen_like.py --out /tmp/qwen15 --shape 1.5b   (28 layers unless --layers)
"""
import argparse
import json
import os
import random
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "assets", "demo-model")

# Qwen2.5's config.json values per size: hidden, intermediate, layers, heads, kv heads (all tie the LM head).
SHAPES = {"0.5b": (896, 4864, 24, 14, 2), "1.5b": (1536, 8960, 28, 12, 2), "3b": (2048, 11008, 36, 16, 2)}

WORDS = ("the a film story plot actor scene music light dark long short great dull warm cold bright "
         "slow fast quiet loud kind odd fine rough clear vague bold calm wild tender grim").split()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--shape", choices=sorted(SHAPES), default="0.5b", help="Qwen2.5 size whose config.json values to use")
    p.add_argument("--layers", type=int, default=0, help="num_hidden_layers (0: the shape's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs", type=int, default=16, help="rows of prefs.jsonl")
    p.add_argument("--prompt_words", type=int, default=48)
    p.add_argument("--completion_words", type=int, default=160)
    a = p.parse_args()

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(a.seed)
    hidden, inter, layers, heads, kv = SHAPES[a.shape]
    a.layers = a.layers or layers
    if a.shape != "0.5b":  # built in bfloat16 directly: a 3B model in float32 needs 12 GB of host memory
        torch.set_default_dtype(torch.bfloat16)
    cfg = Qwen2Config(vocab_size=151936, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=a.layers,
                      num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=32768,
                      rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
                      bos_token_id=2047, eos_token_id=2047, pad_token_id=2047, use_sliding_window=False)
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(a.out, safe_serialization=True)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(os.path.join(DEMO, f), os.path.join(a.out, f))
    n = sum(t.numel() for t in model.parameters())
    rng = random.Random(a.seed)
    text = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))
    with open(os.path.join(a.out, "prefs.jsonl"), "w") as f:
        for _ in range(a.pairs):
            f.write(json.dumps({"prompt": text(a.prompt_words), "chosen": " " + text(a.completion_words),
                                "rejected": " " + text(a.completion_words)}) + "\n")
    print(json.dumps({"out": a.out, "layers": a.layers, "parameters": n}))


if __name__ == "__main__":
    main()
