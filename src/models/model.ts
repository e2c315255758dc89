// What every model family provides: a causal LM over Hugging Face weights (kept under their HF
// names), split into body (hidden states) and head (logits) so that callers can run the LM head
// on selected positions only.
import { gradEnabled } from '../core/autograd.js';
import { tidy, type Tensor } from '../core/tensor.js';
import { checkpoint } from '../nn/checkpoint.js';
import type { Dense, LoraDropout } from '../nn/linear.js';

/** Keys and values of past positions, per layer: [B, S, Hkv, Dh]. */
export interface KVCache {
  k: (Tensor | null)[];
  v: (Tensor | null)[];
  /** Positions already in the cache. */
  length: number;
}

export interface ForwardOptions {
  /** [B, S] float mask over cache + new positions: 1 real token, 0 padding. Default: all real. */
  attentionMask?: Tensor | null;
  /** Position of each new token [B*T] (host). Default: cache.length + t for every row. */
  positions?: Int32Array | null;
  /** Grown in place with the new keys / values when given. */
  cache?: KVCache | null;
  /** LoRA adapter on (default) or off (the base model, e.g. as the DPO reference). */
  adapter?: boolean;
  /**
   * Keys / values of shared prefixes (per layer [Pp, Tp, Hkv, Dh], with gradient) that the new
   * tokens continue: batch row b continues prefix row `rows[b]`. attentionMask then covers
   * [B, Tp + T]. Used to compute a pair's prompt once for both of its completions.
   */
  prefix?: { kv: { k: Tensor; v: Tensor }[]; rows: Tensor } | null;
  /** When given, each layer's keys / values of the new tokens are pushed here (with gradient). */
  collect?: { k: Tensor; v: Tensor }[] | null;
  /** LoRA dropout of this forward (training the adapter; the trainer makes one per micro-batch). Default: none. */
  dropout?: LoraDropout | null;
}

export type Json = Record<string, unknown>;

/** A causal language model of a supported family, its weights on a backend, built from config.json + safetensors. */
export interface CausalLM {
  /** Family name from the registry (gpt2, llama, mistral, qwen2, qwen3, gemma3). */
  readonly family: string;
  /** config.json as loaded. */
  readonly config: Json;
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly hiddenSize: number;
  /** Parameters by Hugging Face name; tied weights appear once (under the embedding's name). */
  readonly params: Map<string, Tensor>;
  /** Linear layers a LoRA adapter may target, by module path (e.g. model.layers.0.self_attn.q_proj). */
  readonly linears: Map<string, Dense>;
  /**
   * Recompute each layer in backward instead of keeping its activations (HF's
   * gradient_checkpointing; see nn/checkpoint.ts). Only while recording, and not with a KV cache,
   * a shared prefix or collected keys / values. Same numbers, less memory, ~1/3 more compute.
   */
  gradientCheckpointing?: boolean;
  /** Final hidden states [B, T, C] (after the last norm). */
  body(ids: Tensor, opts?: ForwardOptions): Tensor;
  /** Logits [..., V] from hidden states [..., C]. */
  head(hidden: Tensor): Tensor;
  /** An empty KV cache for this model. */
  newCache(): KVCache;
}

/** body + head. */
export function forward(model: CausalLM, ids: Tensor, opts?: ForwardOptions): Tensor {
  return model.head(model.body(ids, opts));
}

/** Default positions: past + t for every row. */
export function defaultPositions(B: number, T: number, past: number): Int32Array {
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = past + t;
  return pos;
}

/** Parameter shapes a family expects, by HF name. */
export type ParamShapes = Map<string, number[]>;

/**
 * Runs one layer of body(): checkpointed when the model asks for it (see gradientCheckpointing);
 * without recording, in a scope of its own so that its intermediates are freed at once (a
 * reference or eval pass then holds one layer's activations, not all of them).
 */
export function runLayer(
  model: CausalLM,
  opts: ForwardOptions,
  prefix: string,
  block: (x: Tensor) => Tensor,
  x: Tensor,
): Tensor {
  if (!gradEnabled()) return opts.collect ? block(x) : tidy(() => block(x));
  const ckpt = (model.gradientCheckpointing ?? false) && !opts.cache && !opts.prefix && !opts.collect;
  return ckpt ? checkpoint(block, x, blockParams(model, prefix), opts.dropout ?? null) : block(x);
}

/** The tensors a layer reads: parameters under `prefix` and the LoRA factors of its linears. */
export function blockParams(model: CausalLM, prefix: string): Tensor[] {
  const out = [...model.params].filter(([name]) => name.startsWith(prefix)).map(([, t]) => t);
  for (const [path, d] of model.linears) if (path.startsWith(prefix) && d.lora) out.push(d.lora.A, d.lora.B);
  return out;
}
