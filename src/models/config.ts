// Reading config.json fields with clear errors, and the parts shared by the Llama-style families.
import { ropeParams } from '../nn/rope.js';
import type { DecoderSpec } from './decoder.js';
import { activationOf } from './decoder.js';
import type { Json } from './model.js';

export function num(config: Json, key: string, fallback?: number): number {
  const v = config[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new Error(`config.json: missing number field '${key}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`config.json: field '${key}' must be a number, got ${JSON.stringify(v)}`);
  return v;
}

export function bool(config: Json, key: string, fallback: boolean): boolean {
  const v = config[key];
  return v === undefined || v === null ? fallback : Boolean(v);
}

/** Per-layer attention type: config.layer_types, else every layer full (or sliding when `allSliding`). */
export function layerTypes(config: Json, layers: number, allSliding = false): string[] {
  const lt = config.layer_types;
  if (Array.isArray(lt)) {
    if (lt.length < layers) throw new Error(`config.json: layer_types has ${lt.length} entries for ${layers} layers`);
    return lt.slice(0, layers).map(String);
  }
  return new Array(layers).fill(allSliding ? 'sliding_attention' : 'full_attention');
}

/** The DecoderSpec fields every Llama-style config shares; families override what differs. */
export function llamaLikeSpec(family: string, c: Json, over: Partial<DecoderSpec> = {}): DecoderSpec {
  const hidden = num(c, 'hidden_size'),
    heads = num(c, 'num_attention_heads');
  const layers = num(c, 'num_hidden_layers');
  const headDim = num(c, 'head_dim', Math.floor(hidden / heads));
  const window = c.sliding_window == null ? 0 : num(c, 'sliding_window');
  const types = layerTypes(c, layers, family === 'mistral' && window > 0);
  if (hidden % heads !== 0 && c.head_dim == null)
    throw new Error(`config.json: hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`);
  return {
    family,
    vocab: num(c, 'vocab_size'),
    hidden,
    layers,
    heads,
    kvHeads: num(c, 'num_key_value_heads', heads),
    headDim,
    intermediate: num(c, 'intermediate_size'),
    eps: num(c, 'rms_norm_eps', 1e-6),
    normOffset: 0,
    act: activationOf(c, 'hidden_act'),
    qkvBias: bool(c, 'attention_bias', false),
    oBias: bool(c, 'attention_bias', false),
    mlpBias: bool(c, 'mlp_bias', false),
    qkNorm: false,
    sandwichNorms: false,
    embedScale: 1,
    attnScale: 1 / Math.sqrt(headDim),
    attnSoftcap: 0,
    finalSoftcap: 0,
    tieEmbeddings: bool(c, 'tie_word_embeddings', false),
    layerWindow: types.map((t) => (t === 'sliding_attention' ? window : 0)),
    layerRope: types.map((t) => ropeParams(c, t)),
    ...over,
  };
}
