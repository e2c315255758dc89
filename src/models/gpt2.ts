// GPT-2: learned positions, pre-LayerNorm blocks, fused qkv projection (c_attn), tanh-GELU MLP,
// tied LM head. Its Conv1D layers store weights [in, out], the transpose of nn.Linear.
import { add, attention, embedding, gelu, linear, layerNorm, reshape, split, tensor } from '../core/index.js';
import type { Tensor } from '../core/tensor.js';
import { dense, type Dense } from '../nn/linear.js';
import { bool, num } from './config.js';
import { withPast } from './decoder.js';
import {
  defaultPositions,
  type CausalLM,
  type ForwardOptions,
  type Json,
  type KVCache,
  type ParamShapes,
  runLayer,
} from './model.js';

export interface Gpt2Spec {
  vocab: number;
  positions: number;
  hidden: number;
  layers: number;
  heads: number;
  inner: number;
  eps: number;
  act: 'gelu_tanh' | 'gelu_erf';
  /** 1/sqrt(head size) when scale_attn_weights, else 1. */
  attnScale: number;
  tieEmbeddings: boolean;
}

function spec(c: Json): Gpt2Spec {
  const hidden = num(c, 'n_embd'),
    heads = num(c, 'n_head');
  const act = String(c.activation_function ?? 'gelu_new');
  if (!['gelu_new', 'gelu_pytorch_tanh', 'gelu'].includes(act))
    throw new Error(`config.json: activation_function '${act}' is not supported`);
  if (bool(c, 'scale_attn_by_inverse_layer_idx', false))
    throw new Error('config.json: scale_attn_by_inverse_layer_idx is not supported');
  return {
    vocab: num(c, 'vocab_size'),
    positions: num(c, 'n_positions'),
    hidden,
    layers: num(c, 'n_layer'),
    heads,
    inner: c.n_inner == null ? 4 * hidden : num(c, 'n_inner'),
    eps: num(c, 'layer_norm_epsilon', 1e-5),
    act: act === 'gelu' ? 'gelu_erf' : 'gelu_tanh',
    attnScale: bool(c, 'scale_attn_weights', true) ? 1 / Math.sqrt(hidden / heads) : 1,
    tieEmbeddings: bool(c, 'tie_word_embeddings', true),
  };
}

function shapes(s: Gpt2Spec): ParamShapes {
  const m = new Map<string, number[]>();
  const C = s.hidden;
  m.set('transformer.wte.weight', [s.vocab, C]);
  m.set('transformer.wpe.weight', [s.positions, C]);
  for (let i = 0; i < s.layers; i++) {
    const p = `transformer.h.${i}.`;
    for (const ln of ['ln_1', 'ln_2']) {
      m.set(`${p}${ln}.weight`, [C]);
      m.set(`${p}${ln}.bias`, [C]);
    }
    for (const [name, inp, out] of [
      ['attn.c_attn', C, 3 * C],
      ['attn.c_proj', C, C],
      ['mlp.c_fc', C, s.inner],
      ['mlp.c_proj', s.inner, C],
    ] as const) {
      m.set(`${p}${name}.weight`, [inp, out]);
      m.set(`${p}${name}.bias`, [out]);
    }
  }
  m.set('transformer.ln_f.weight', [C]);
  m.set('transformer.ln_f.bias', [C]);
  if (!s.tieEmbeddings) m.set('lm_head.weight', [s.vocab, C]);
  return m;
}

/** Old checkpoints lack the `transformer.` prefix and carry attention-mask buffers. */
function sanitize(names: string[]): Map<string, string | null> {
  const map = new Map<string, string | null>();
  for (const n of names) {
    if (/\.attn\.(bias|masked_bias)$/.test(n)) map.set(n, null);
    else if (!n.startsWith('transformer.') && n !== 'lm_head.weight') map.set(n, `transformer.${n}`);
    else map.set(n, n);
  }
  return map;
}

export class Gpt2LM implements CausalLM {
  readonly family = 'gpt2';
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly linears = new Map<string, Dense>();
  gradientCheckpointing = false;

  constructor(
    readonly spec: Gpt2Spec,
    readonly config: Json,
    readonly params: Map<string, Tensor>,
  ) {
    this.vocabSize = spec.vocab;
    this.numLayers = spec.layers;
    this.hiddenSize = spec.hidden;
    for (let i = 0; i < spec.layers; i++) {
      for (const name of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']) {
        const path = `transformer.h.${i}.${name}`;
        this.linears.set(path, {
          weight: params.get(`${path}.weight`)!,
          bias: params.get(`${path}.bias`)!,
          fanInFanOut: true,
        });
      }
    }
  }

  private p(name: string): Tensor {
    return this.params.get(name)!;
  }

  newCache(): KVCache {
    return { k: new Array(this.numLayers).fill(null), v: new Array(this.numLayers).fill(null), length: 0 };
  }

  body(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const s = this.spec,
      C = s.hidden,
      H = s.heads,
      Dh = C / H;
    const [B, T] = ids.shape;
    const cache = opts.cache ?? null;
    const on = opts.adapter ?? true,
      drop = opts.dropout ?? null;
    const positions = opts.positions ?? defaultPositions(B, T, cache?.length ?? 0);
    for (const pos of positions) {
      if (pos >= s.positions) throw new Error(`gpt2: position ${pos} is beyond n_positions ${s.positions}`);
    }
    const pos = tensor(positions, [B, T], 'i32', ids.backend);
    // (B, T, C)
    let x = add(embedding(this.p('transformer.wte.weight'), ids), embedding(this.p('transformer.wpe.weight'), pos));
    for (let i = 0; i < s.layers; i++) {
      const pre = `transformer.h.${i}.`;
      const lin = (name: string): Dense => this.linears.get(`${pre}${name}`)!;
      const block = (x: Tensor): Tensor => {
        const h = layerNorm(x, this.p(`${pre}ln_1.weight`), this.p(`${pre}ln_1.bias`), s.eps);
        const qkv = dense(h, lin('attn.c_attn'), on, drop); // (B, T, 3C)
        const [q, k0, v0] = split(qkv, 2, [C, C, C]).map((t) => reshape(t, [B, T, H, Dh])); // (B, T, H, Dh)
        let k = k0,
          v = v0;
        [k, v] = withPast(opts, i, k, v);
        const a = attention(q, k, v, { mask: opts.attentionMask ?? null, scale: s.attnScale, causal: true });
        x = add(x, dense(reshape(a, [B, T, C]), lin('attn.c_proj'), on, drop));
        const g = layerNorm(x, this.p(`${pre}ln_2.weight`), this.p(`${pre}ln_2.bias`), s.eps);
        const m = gelu(dense(g, lin('mlp.c_fc'), on, drop), s.act === 'gelu_tanh' ? 'tanh' : 'erf');
        return add(x, dense(m, lin('mlp.c_proj'), on, drop));
      };
      x = runLayer(this, opts, pre, block, x);
    }
    if (cache) cache.length += T;
    return layerNorm(x, this.p('transformer.ln_f.weight'), this.p('transformer.ln_f.bias'), s.eps);
  }

  head(hidden: Tensor): Tensor {
    return linear(hidden, this.params.get(this.spec.tieEmbeddings ? 'transformer.wte.weight' : 'lm_head.weight')!);
  }
}

export const gpt2 = {
  modelTypes: ['gpt2'],
  spec,
  shapes,
  sanitize,
  build: (s: Gpt2Spec, config: Json, params: Map<string, Tensor>): CausalLM => new Gpt2LM(s, config, params),
  loraTargetModules: ['c_attn'], // the fused q, k, v projection
};
