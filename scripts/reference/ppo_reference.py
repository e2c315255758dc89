"""One PPO update on fixed rollouts, as TRL 0.28's PPOTrainer computes it, in plain PyTorch.

TRL 1.13 (the reference venv) no longer ships PPO, so this script restates the update of
trl/experimental/ppo/ppo_trainer.py at tag v0.28.0 (the same code as trl/trainer/ppo_trainer.py's
re-export in 0.28 and trl.experimental.ppo up to 1.9); comments cite that file's lines as
"ppo_trainer.py:N", and trl/experimental/utils.py v0.28.0 as "utils.py:N". What it does not
restate: sampling (the rollouts are given), the data loader's order (the permutations are given),
bf16 autocast (PPOConfig's bf16 default; this runs float32, as tsdpo).

Usage (reference venv):
  python scripts/reference/ppo_reference.py --jobs jobs.json
jobs.json: a list of {"config": {...}, "out": DIR}. config holds policy, ref_policy, reward_model,
value_model (folders), queries (B x Q, left-padded with pad_token_id), responses (B x T),
pad_token_id, eos_token_id, stop_token_id (or null), permutations (one per PPO epoch), lr,
end_of_dataloader, and PPOConfig's names: temperature, missing_eos_penalty, kl_coef,
kl_estimator, gamma, lam, whiten_rewards, cliprange, cliprange_value, vf_coef, num_ppo_epochs,
num_mini_batches, per_device_train_batch_size, gradient_accumulation_steps,
local_rollout_forward_batch_size, weight_decay, adam_beta1, adam_beta2, adam_epsilon.
Each job writes DIR/result.json (every intermediate array and metric) and DIR/params.safetensors
(policy.* and value_model.* after the update).

  python scripts/reference/ppo_reference.py --make-reward POLICY_DIR OUT_DIR --seed N --pad ID
writes a GPT2ForSequenceClassification (or other family) folder from a causal LM's weights with a
seeded score head: the reward / value model of the tests.
"""
import argparse
import json
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

INVALID_LOGPROB = 1.0  # ppo_trainer.py:76


def first_true_indices(bools):
    """Index of the first True per row, the row length when none (utils.py:318-338)."""
    row_len = bools.size(-1)
    idx = row_len * (~bools).long() + torch.arange(row_len)
    return torch.min(idx, dim=-1).values


def truncate_response(stop_id, pad_id, responses):
    """Tokens after the first stop token become pad (ppo_trainer.py:172-192)."""
    first = first_true_indices(responses == stop_id).unsqueeze(-1)
    idx = torch.arange(responses.shape[1]).view(1, -1)
    return torch.masked_fill(responses, idx > first, pad_id)


def model_inputs(query_responses, pad_id):
    """Attention on non-pad tokens, positions = exclusive cumsum of the mask, pads fed as id 0
    (ppo_trainer.py:195-224 forward; utils.py:366-369 get_reward)."""
    mask = query_responses != pad_id
    positions = mask.cumsum(1) - mask.long()
    ids = torch.masked_fill(query_responses, ~mask, 0)
    return dict(input_ids=ids, attention_mask=mask, position_ids=positions, return_dict=True, output_hidden_states=True)


def score_all(model, query_responses, pad_id):
    """The score head on every position of the backbone's last hidden states (utils.py:368-378;
    PolicyAndValueWrapper.forward, ppo_trainer.py:279-291)."""
    backbone = getattr(model, model.base_model_prefix)
    out = backbone(**model_inputs(query_responses, pad_id), use_cache=False)
    return model.score(out.hidden_states[-1])


def get_reward(model, query_responses, pad_id, context_length):
    """Scores at each row's last non-pad response token (utils.py:341-385)."""
    logits = score_all(model, query_responses, pad_id)
    lens = first_true_indices(query_responses[:, context_length:] == pad_id) - 1 + context_length
    return logits, logits[torch.arange(logits.size(0)), lens].squeeze(-1), lens


def selective_log_softmax(logits, index):
    """log_softmax gathered at index (trl/trainer/utils.py:638-668, float32 branch)."""
    picked = torch.gather(logits, dim=-1, index=index.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def masked_mean(values, mask):
    return (values * mask).sum() / mask.sum()  # ppo_trainer.py:241-246


def masked_var(values, mask):
    """Unbiased masked variance (ppo_trainer.py:249-265)."""
    centered = values - masked_mean(values, mask)
    var = masked_mean(centered ** 2, mask)
    n = mask.sum()
    return var * (n / (n - 1))


def masked_whiten(values, mask, shift_mean=True):
    """ppo_trainer.py:268-274."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    out = (values - mean) * torch.rsqrt(var + 1e-8)
    return out if shift_mean else out + mean


def policy_logprobs(model, query_responses, responses, pad_id, context_length, temperature):
    """Response log-probs under logits / (T + 1e-7) (ppo_trainer.py:702-707, 812-816). The rollout's own
    log-probs come from the sampler's scores in TRL (ppo_trainer.py:695); with fixed rollouts they are
    this forward's, the same distribution."""
    out = model(**model_inputs(query_responses, pad_id))
    logits = out.logits[:, context_length - 1: -1] / (temperature + 1e-7)
    targets = torch.where(responses == pad_id, torch.zeros_like(responses), responses)
    return selective_log_softmax(logits, targets), logits


def run(cfg):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    torch.manual_seed(0)
    policy = AutoModelForCausalLM.from_pretrained(cfg["policy"], dtype=torch.float32)
    ref = AutoModelForCausalLM.from_pretrained(cfg["ref_policy"], dtype=torch.float32)
    reward_model = AutoModelForSequenceClassification.from_pretrained(cfg["reward_model"], dtype=torch.float32)
    value_model = AutoModelForSequenceClassification.from_pretrained(cfg["value_model"], dtype=torch.float32)
    for m in (policy, ref, reward_model, value_model):
        m.train()  # dropout is 0 in the test models (TRL disables it, ppo_trainer.py:476-478)
    pad, eos, stop = cfg["pad_token_id"], cfg["eos_token_id"], cfg["stop_token_id"]
    T_ = cfg["temperature"]
    queries = torch.tensor(cfg["queries"], dtype=torch.long)
    responses = torch.tensor(cfg["responses"], dtype=torch.long)
    query_responses = torch.cat([queries, responses], 1)
    B, Q = queries.shape
    fwd = cfg["local_rollout_forward_batch_size"]

    # ---- Rollout phase (ppo_trainer.py:668-792), no gradient.
    with torch.no_grad():
        lps, ref_lps, vals, scores, posts, lens_all = [], [], [], [], [], []
        for i in range(0, B, fwd):
            q, qr = queries[i:i + fwd], query_responses[i:i + fwd]
            resp = qr[:, Q:]
            lps.append(policy_logprobs(policy, qr, resp, pad, Q, T_)[0])
            ref_lps.append(policy_logprobs(ref, qr, resp, pad, Q, T_)[0])  # ppo_trainer.py:698-707
            post = resp if stop is None else truncate_response(stop, pad, resp)  # ppo_trainer.py:709-716
            pqr = torch.cat([q, post], 1)
            lens_all.append(first_true_indices(post == pad) - 1)  # ppo_trainer.py:719
            full_value, _, _ = get_reward(value_model, qr, pad, Q)  # ppo_trainer.py:720-724
            vals.append(full_value[:, Q - 1: -1].squeeze(-1))
            _, score, _ = get_reward(reward_model, pqr, pad, Q)  # ppo_trainer.py:725-727
            scores.append(score)
            posts.append(post)
        logprobs, ref_logprobs = torch.cat(lps), torch.cat(ref_lps)
        values, scores, post = torch.cat(vals), torch.cat(scores), torch.cat(posts)
        seq_lens = torch.cat(lens_all)
        raw_scores = scores.clone()
        contain_eos = torch.any(post == eos, dim=-1)  # ppo_trainer.py:747-752
        if cfg.get("missing_eos_penalty") is not None:
            scores[~contain_eos] -= cfg["missing_eos_penalty"]
        T = responses.shape[1]
        idxs = torch.arange(T).repeat(B, 1)  # ppo_trainer.py:754-762
        padding_mask = idxs > seq_lens.unsqueeze(1)
        logprobs = torch.masked_fill(logprobs, padding_mask, INVALID_LOGPROB)
        ref_logprobs = torch.masked_fill(ref_logprobs, padding_mask, INVALID_LOGPROB)
        lens_p1 = seq_lens + 1
        padding_mask_p1 = idxs > lens_p1.unsqueeze(1)
        values = torch.masked_fill(values, padding_mask_p1, 0)
        logr = ref_logprobs - logprobs  # ppo_trainer.py:764-771
        kl = -logr if cfg["kl_estimator"] == "k1" else (logr.exp() - 1) - logr
        non_score_reward = -cfg["kl_coef"] * kl
        rewards = non_score_reward.clone()
        end = torch.where(lens_p1 < T, lens_p1, seq_lens)
        rewards[torch.arange(B), end] += scores
        if cfg["whiten_rewards"]:  # ppo_trainer.py:773-776
            rewards = masked_whiten(rewards, ~padding_mask_p1, shift_mean=False)
            rewards = torch.masked_fill(rewards, padding_mask_p1, 0)
        last = 0  # GAE, ppo_trainer.py:778-791
        rev = []
        for t in reversed(range(T)):
            nxt = values[:, t + 1] if t < T - 1 else 0.0
            delta = rewards[:, t] + cfg["gamma"] * nxt - values[:, t]
            last = delta + cfg["gamma"] * cfg["lam"] * last
            rev.append(last)
        advantages = torch.stack(rev[::-1], axis=1)
        returns = advantages + values
        advantages = masked_whiten(advantages, ~padding_mask)
        advantages = torch.masked_fill(advantages, padding_mask, 0)

    # ---- PPO epochs (ppo_trainer.py:793-870). One AdamW over policy + value model (Trainer's
    # create_optimizer: weight decay except biases and norms), lr fixed within an update.
    named = [("policy." + n, p) for n, p in policy.named_parameters()] + [("value_model." + n, p) for n, p in value_model.named_parameters()]
    no_decay = lambda n: any(k in n.lower() for k in ("bias", "layernorm", "ln_", "norm"))
    groups = [
        {"params": [p for n, p in named if not no_decay(n)], "weight_decay": cfg.get("weight_decay", 0.0)},
        {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=(cfg.get("adam_beta1", 0.9), cfg.get("adam_beta2", 0.999)),
                            eps=cfg.get("adam_epsilon", 1e-8), foreach=False)
    ga, E, nmb, mbs = cfg["gradient_accumulation_steps"], cfg["num_ppo_epochs"], cfg["num_mini_batches"], cfg["per_device_train_batch_size"]
    mini = B // nmb
    shape = (E, nmb, ga)
    st = {k: torch.zeros(shape) for k in ("approxkl", "pg_clipfrac", "pg_loss", "vf_loss", "vf_clipfrac", "entropy", "ratio")}
    acc_step = cfg.get("accumulation_step", 0)
    micro_log = []
    for e in range(E):
        perm = cfg["permutations"][e]
        for mb in range(nmb):
            inds = perm[mb * mini:(mb + 1) * mini]
            for g, s in enumerate(range(0, mini, mbs)):
                mi = torch.tensor(inds[s:s + mbs], dtype=torch.long)
                # accelerate's Accelerator._do_sync / backward (accelerate/accelerator.py): sync on the
                # loader's last batch (counter reset), else every ga micro-batches; loss / ga.
                if cfg["end_of_dataloader"]:
                    acc_step, sync = 0, True
                else:
                    acc_step += 1
                    sync = acc_step % ga == 0
                qr = query_responses[mi]
                new_lp, logits = policy_logprobs(policy, qr, responses[mi], pad, Q, T_)  # ppo_trainer.py:812-819
                new_lp = torch.masked_fill(new_lp, padding_mask[mi], INVALID_LOGPROB)
                vpred = score_all(value_model, qr, pad)[:, Q - 1: -1].squeeze(-1)  # ppo_trainer.py:819-820
                vpred = torch.masked_fill(vpred, padding_mask_p1[mi], 0)
                vclip = torch.clamp(vpred, values[mi] - cfg["cliprange_value"], values[mi] + cfg["cliprange_value"])
                vf1 = torch.square(vpred - returns[mi])  # ppo_trainer.py:821-832
                vf2 = torch.square(vclip - returns[mi])
                vf_loss = 0.5 * masked_mean(torch.max(vf1, vf2), ~padding_mask_p1[mi])
                vf_clipfrac = masked_mean((vf2 > vf1).float(), ~padding_mask_p1[mi])
                diff = new_lp - logprobs[mi]  # ppo_trainer.py:833-840
                ratio = torch.exp(diff)
                pg1 = -advantages[mi] * ratio
                pg2 = -advantages[mi] * torch.clamp(ratio, 1.0 - cfg["cliprange"], 1.0 + cfg["cliprange"])
                pg_loss = masked_mean(torch.max(pg1, pg2), ~padding_mask[mi])
                loss = pg_loss + cfg["vf_coef"] * vf_loss
                (loss / ga if ga > 1 else loss).backward()
                if sync:
                    opt.step()
                    opt.zero_grad()
                with torch.no_grad():  # ppo_trainer.py:843-859
                    pg_clipfrac = masked_mean((pg2 > pg1).float(), ~padding_mask[mi])
                    p = torch.softmax(logits, dim=-1)
                    entropy = torch.logsumexp(logits, dim=-1) - torch.sum(p * logits, dim=-1)
                    approxkl = 0.5 * (diff ** 2).mean()
                    for k, v in (("approxkl", approxkl), ("pg_clipfrac", pg_clipfrac), ("pg_loss", pg_loss), ("vf_loss", vf_loss),
                                 ("vf_clipfrac", vf_clipfrac), ("entropy", entropy.mean()), ("ratio", ratio.mean())):
                        st[k][e, mb, g] = v
                    micro_log.append({"new_logprobs": new_lp.tolist(), "vpred": vpred.tolist(), "pg_loss": pg_loss.item(),
                                      "vf_loss": vf_loss.item(), "sync": sync})

    with torch.no_grad():  # ppo_trainer.py:872-897
        mean_nsr = non_score_reward.sum(1).mean()
        metrics = {
            "objective/kl": kl.sum(1).mean().item(),
            "objective/entropy": (-logprobs).sum(1).mean().item(),
            "objective/non_score_reward": mean_nsr.item(),
            "objective/rlhf_reward": (mean_nsr + scores.mean()).item(),
            "objective/scores": scores.mean().item(),
            "policy/approxkl_avg": st["approxkl"].mean().item(),
            "policy/clipfrac_avg": st["pg_clipfrac"].mean().item(),
            "loss/policy_avg": st["pg_loss"].mean().item(),
            "loss/value_avg": st["vf_loss"].mean().item(),
            "val/clipfrac_avg": st["vf_clipfrac"].mean().item(),
            "policy/entropy_avg": st["entropy"].mean().item(),
            "val/ratio": st["ratio"].mean().item(),
            "val/ratio_var": st["ratio"].var().item(),
            "val/num_eos_tokens": (responses == eos).sum().item(),
            "lr": cfg["lr"],
        }
    result = {
        "logprobs": logprobs.tolist(), "ref_logprobs": ref_logprobs.tolist(), "values": values.tolist(),
        "raw_scores": raw_scores.tolist(), "scores": scores.tolist(), "seq_lens": seq_lens.tolist(), "postprocessed": post.tolist(),
        "kl": kl.tolist(), "non_score_reward": non_score_reward.tolist(), "rewards": rewards.tolist(),
        "advantages": advantages.tolist(), "returns": returns.tolist(), "metrics": metrics, "micro": micro_log,
        "stats": {k: v.flatten().tolist() for k, v in st.items()}, "accumulation_step": acc_step,
    }
    return result, {n: p.detach().contiguous() for n, p in named}


def make_reward(src, out, seed, pad):
    """A *ForSequenceClassification folder (num_labels 1) from a causal LM folder, score head seeded."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    config = AutoConfig.from_pretrained(src)
    config.num_labels = 1
    config.pad_token_id = pad
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(src, config=config, dtype=torch.float32)
    with torch.no_grad():
        model.score.weight.normal_(0, 1.0)
    model.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(out, f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs")
    ap.add_argument("--make-reward", nargs=2, metavar=("SRC", "OUT"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pad", type=int, default=0)
    a = ap.parse_args()
    if a.make_reward:
        make_reward(a.make_reward[0], a.make_reward[1], a.seed, a.pad)
    if a.jobs:
        from safetensors.torch import save_file
        with open(a.jobs) as f:
            jobs = json.load(f)
        for job in jobs:
            os.makedirs(job["out"], exist_ok=True)
            result, params = run(job["config"])
            with open(os.path.join(job["out"], "result.json"), "w") as f:
                json.dump(result, f)
            save_file(params, os.path.join(job["out"], "params.safetensors"))


if __name__ == "__main__":
    main()
