// The decoder shared by the Llama-style families (llama, mistral, qwen2, qwen3, gemma3):
// RMS-normed pre-norm blocks, rotary attention with grouped-query heads, gated MLP. Each family
// file turns its config.json into a DecoderSpec; nothing here branches on a family name.
import { noGrad } from '../core/autograd.js';
import {
  add,
  affine,
  attention,
  concat,
  embedding,
  gelu,
  linear,
  mul,
  reshape,
  rmsNorm,
  rope,
  silu,
  tanh,
} from '../core/ops/index.js';
import { keep, type Tensor } from '../core/tensor.js';
import { dense, type Dense, type LoraDropout } from '../nn/linear.js';
import { invFreq, rotaryTables, type RopeParams } from '../nn/rope.js';
import {
  defaultPositions,
  type CausalLM,
  type ForwardOptions,
  type Json,
  type KVCache,
  type ParamShapes,
  runLayer,
} from './model.js';

export interface DecoderSpec {
  family: string;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  eps: number;
  /** RMSNorm scale is (offset + w): 0 for Llama, 1 for Gemma. */
  normOffset: number;
  act: 'silu' | 'gelu_tanh' | 'gelu_erf';
  /** Biases on q/k/v (Qwen2, attention_bias) and on o_proj. */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** RMSNorm on each head of q and k before rotary (Qwen3, Gemma 3). */
  qkNorm: boolean;
  /** Norms after attention and after the MLP too (Gemma 3's four norms per block). */
  sandwichNorms: boolean;
  /** Embeddings multiplied by this (Gemma: sqrt(hidden) in the weights' dtype), or 1. */
  embedScale: number;
  /** Attention score scale (1/sqrt(head_dim), Gemma: query_pre_attn_scalar^-0.5). */
  attnScale: number;
  attnSoftcap: number;
  finalSoftcap: number;
  tieEmbeddings: boolean;
  /** Per layer: sliding window (0 = full attention) and rotary parameters. */
  layerWindow: number[];
  layerRope: RopeParams[];
}

/** What every layer of one forward shares. */
interface Forward {
  B: number;
  T: number;
  opts: ForwardOptions;
  /** LoRA adapter on, and its dropout (training). */
  adapter: boolean;
  dropout: LoraDropout | null;
  /** cos / sin tables per rotary frequency set. */
  tables: Map<Float64Array, { cos: Tensor; sin: Tensor }>;
}

interface Layer {
  inputNorm: Tensor;
  postAttnNorm: Tensor | null;
  preMlpNorm: Tensor;
  postMlpNorm: Tensor | null;
  q: Dense;
  k: Dense;
  v: Dense;
  o: Dense;
  qNorm: Tensor | null;
  kNorm: Tensor | null;
  gate: Dense;
  up: Dense;
  down: Dense;
  window: number;
  rope: Float64Array;
}

/** The tensors a spec expects, by Hugging Face name. */
export function decoderShapes(s: DecoderSpec): ParamShapes {
  const m = new Map<string, number[]>();
  const C = s.hidden,
    qd = s.heads * s.headDim,
    kvd = s.kvHeads * s.headDim;
  m.set('model.embed_tokens.weight', [s.vocab, C]);
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    m.set(`${p}input_layernorm.weight`, [C]);
    m.set(`${p}post_attention_layernorm.weight`, [C]);
    if (s.sandwichNorms) {
      m.set(`${p}pre_feedforward_layernorm.weight`, [C]);
      m.set(`${p}post_feedforward_layernorm.weight`, [C]);
    }
    for (const [name, out, inp, bias] of [
      ['q_proj', qd, C, s.qkvBias],
      ['k_proj', kvd, C, s.qkvBias],
      ['v_proj', kvd, C, s.qkvBias],
      ['o_proj', C, qd, s.oBias],
    ] as const) {
      m.set(`${p}self_attn.${name}.weight`, [out, inp]);
      if (bias) m.set(`${p}self_attn.${name}.bias`, [out]);
    }
    if (s.qkNorm) {
      m.set(`${p}self_attn.q_norm.weight`, [s.headDim]);
      m.set(`${p}self_attn.k_norm.weight`, [s.headDim]);
    }
    for (const [name, out, inp] of [
      ['gate_proj', s.intermediate, C],
      ['up_proj', s.intermediate, C],
      ['down_proj', C, s.intermediate],
    ] as const) {
      m.set(`${p}mlp.${name}.weight`, [out, inp]);
      if (s.mlpBias) m.set(`${p}mlp.${name}.bias`, [out]);
    }
  }
  m.set('model.norm.weight', [C]);
  if (!s.tieEmbeddings) m.set('lm_head.weight', [s.vocab, C]);
  return m;
}

export class DecoderLM implements CausalLM {
  readonly family: string;
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly linears = new Map<string, Dense>();
  gradientCheckpointing = false;
  private readonly layers: Layer[];
  private readonly embed: Tensor;
  private readonly finalNorm: Tensor;
  private readonly lmHead: Tensor;

  constructor(
    readonly spec: DecoderSpec,
    readonly config: Json,
    readonly params: Map<string, Tensor>,
  ) {
    this.family = spec.family;
    this.vocabSize = spec.vocab;
    this.numLayers = spec.layers;
    this.hiddenSize = spec.hidden;
    const p = (name: string): Tensor => params.get(name)!;
    const opt = (name: string): Tensor | null => params.get(name) ?? null;
    const lin = (path: string): Dense => {
      const d: Dense = { weight: p(`${path}.weight`), bias: opt(`${path}.bias`) };
      this.linears.set(path, d);
      return d;
    };
    this.embed = p('model.embed_tokens.weight');
    this.finalNorm = p('model.norm.weight');
    this.lmHead = spec.tieEmbeddings ? this.embed : p('lm_head.weight');
    const freqs = new Map<string, Float64Array>();
    this.layers = Array.from({ length: spec.layers }, (_, i) => {
      const pre = `model.layers.${i}.`;
      const key = JSON.stringify(spec.layerRope[i]);
      if (!freqs.has(key)) freqs.set(key, invFreq(spec.layerRope[i], spec.headDim));
      return {
        inputNorm: p(`${pre}input_layernorm.weight`),
        postAttnNorm: spec.sandwichNorms ? p(`${pre}post_attention_layernorm.weight`) : null,
        preMlpNorm: spec.sandwichNorms
          ? p(`${pre}pre_feedforward_layernorm.weight`)
          : p(`${pre}post_attention_layernorm.weight`),
        postMlpNorm: spec.sandwichNorms ? p(`${pre}post_feedforward_layernorm.weight`) : null,
        q: lin(`${pre}self_attn.q_proj`),
        k: lin(`${pre}self_attn.k_proj`),
        v: lin(`${pre}self_attn.v_proj`),
        o: lin(`${pre}self_attn.o_proj`),
        qNorm: opt(`${pre}self_attn.q_norm.weight`),
        kNorm: opt(`${pre}self_attn.k_norm.weight`),
        gate: lin(`${pre}mlp.gate_proj`),
        up: lin(`${pre}mlp.up_proj`),
        down: lin(`${pre}mlp.down_proj`),
        window: spec.layerWindow[i],
        rope: freqs.get(key)!,
      };
    });
  }

  newCache(): KVCache {
    return { k: new Array(this.numLayers).fill(null), v: new Array(this.numLayers).fill(null), length: 0 };
  }

  /**
   * Hidden states (B, T, C) of ids (B, T): embeddings, then per layer the pre-norm block
   *   x = x + attn(norm(x)); x = x + mlp(norm(x))
   * (Gemma 3 norms each branch's output too), then the final norm.
   */
  body(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const s = this.spec;
    const [B, T] = ids.shape;
    const cache = opts.cache ?? null;
    const positions = opts.positions ?? defaultPositions(B, T, cache?.length ?? 0);
    const norm = (x: Tensor, w: Tensor): Tensor => rmsNorm(x, w, s.eps, s.normOffset);
    const tables = new Map<Float64Array, { cos: Tensor; sin: Tensor }>();
    for (const l of this.layers)
      if (!tables.has(l.rope)) tables.set(l.rope, rotaryTables(l.rope, positions, B, T, ids.backend));
    const f: Forward = { B, T, opts, adapter: opts.adapter ?? true, dropout: opts.dropout ?? null, tables };

    let x = embedding(this.embed, ids); // (B, T, C)
    if (s.embedScale !== 1) x = affine(x, s.embedScale);
    this.layers.forEach((l, i) => {
      const block = (x: Tensor): Tensor => {
        let a = this.selfAttention(l, i, norm(x, l.inputNorm), f);
        if (l.postAttnNorm) a = norm(a, l.postAttnNorm);
        x = add(x, a);
        let m = this.mlp(l, norm(x, l.preMlpNorm), f);
        if (l.postMlpNorm) m = norm(m, l.postMlpNorm);
        return add(x, m);
      };
      x = runLayer(this, opts, `model.layers.${i}.`, block, x);
    });
    if (cache) cache.length += T;
    return norm(x, this.finalNorm);
  }

  /**
   * Self-attention of layer i over normed hidden states h (B, T, C): q / k / v projections, per-head
   * q / k norms (Qwen3, Gemma 3), rotary positions, the past keys / values (cache or shared prefix),
   * grouped-query attention (causal, sliding window, soft-capping), the output projection.
   */
  private selfAttention(l: Layer, i: number, h: Tensor, f: Forward): Tensor {
    const s = this.spec,
      { B, T } = f;
    const proj = (d: Dense, x: Tensor): Tensor => dense(x, d, f.adapter, f.dropout);
    let q = reshape(proj(l.q, h), [B, T, s.heads, s.headDim]); // (B, T, H, Dh)
    let k = reshape(proj(l.k, h), [B, T, s.kvHeads, s.headDim]); // (B, T, Hkv, Dh)
    let v = reshape(proj(l.v, h), [B, T, s.kvHeads, s.headDim]); // (B, T, Hkv, Dh)
    if (l.qNorm && l.kNorm) {
      q = rmsNorm(q, l.qNorm, s.eps, s.normOffset);
      k = rmsNorm(k, l.kNorm, s.eps, s.normOffset);
    }
    const { cos, sin } = f.tables.get(l.rope)!;
    q = rope(q, cos, sin);
    k = rope(k, cos, sin);
    [k, v] = withPast(f.opts, i, k, v); // (B, S, Hkv, Dh), S = past + T
    const a = attention(q, k, v, {
      mask: f.opts.attentionMask ?? null,
      scale: s.attnScale,
      causal: true,
      window: l.window,
      softcap: s.attnSoftcap,
    }); // (B, T, H, Dh)
    return proj(l.o, reshape(a, [B, T, s.heads * s.headDim])); // (B, T, C)
  }

  /** The gated MLP over normed hidden states g (B, T, C): down(act(gate(g)) * up(g)). */
  private mlp(l: Layer, g: Tensor, f: Forward): Tensor {
    const s = this.spec;
    const proj = (d: Dense, x: Tensor): Tensor => dense(x, d, f.adapter, f.dropout);
    const gate = proj(l.gate, g); // (B, T, I)
    const act = s.act === 'silu' ? silu(gate) : gelu(gate, s.act === 'gelu_tanh' ? 'tanh' : 'erf');
    return proj(l.down, mul(act, proj(l.up, g))); // (B, T, C)
  }

  head(hidden: Tensor): Tensor {
    const logits = linear(hidden, this.lmHead);
    return softcap(logits, this.spec.finalSoftcap);
  }
}

/** c tanh(x / c), or x when c is 0. */
export function softcap(x: Tensor, c: number): Tensor {
  return c > 0 ? affine(tanh(affine(x, 1 / c)), c) : x;
}

/**
 * The keys / values layer i attends to: the new ones, after a shared prefix (differentiable)
 * or after the KV cache (grown in place, no gradient); collected for a later prefix use.
 */
export function withPast(opts: ForwardOptions, i: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
  opts.collect?.push({ k, v });
  const pre = opts.prefix;
  if (pre) {
    const rowsOf = (t: Tensor): Tensor => {
      const [Pp, ...rest] = t.shape;
      const picked = embedding(reshape(t, [Pp, t.size / Pp]), pre.rows); // (B, Tp * Hkv * Dh)
      return reshape(picked, [pre.rows.size, ...rest]);
    };
    return [concat([rowsOf(pre.kv[i].k), k], 1), concat([rowsOf(pre.kv[i].v), v], 1)];
  }
  return opts.cache ? appendCache(opts.cache, i, k, v) : [k, v];
}

/** Appends new keys / values to layer i of the cache (no gradient) and returns the full ones. */
export function appendCache(cache: KVCache, i: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
  return noGrad(() => {
    const pk = cache.k[i],
      pv = cache.v[i];
    const fk = keep(pk ? concat([pk, k], 1) : k),
      fv = keep(pv ? concat([pv, v], 1) : v);
    pk?.dispose();
    pv?.dispose();
    cache.k[i] = fk;
    cache.v[i] = fv;
    return [fk, fv];
  });
}

/** hidden_act / hidden_activation names of config.json. */
export function activationOf(config: Json, key: string): DecoderSpec['act'] {
  const name = String(config[key] ?? 'silu');
  if (name === 'silu' || name === 'swish') return 'silu';
  if (name === 'gelu_pytorch_tanh' || name === 'gelu_new' || name === 'gelu_fast') return 'gelu_tanh';
  if (name === 'gelu') return 'gelu_erf';
  throw new Error(`config.json: ${key} '${name}' is not supported (silu, gelu, gelu_pytorch_tanh)`);
}
