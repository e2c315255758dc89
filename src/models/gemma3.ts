// Gemma 3 (text): embeddings scaled by sqrt(hidden_size), (1 + w) RMS norms, four norms per block,
// q/k norms, scores scaled by query_pre_attn_scalar^-0.5, sliding-window layers per layer_types
// with their own rotary base, tanh-GELU, optional logit soft-capping.
import { ropeParams } from '../nn/rope.js';
import { bool, layerTypes, llamaLikeSpec, num } from './config.js';
import { activationOf, type DecoderSpec } from './decoder.js';
import { decoderFamily } from './family.js';
import type { Json } from './model.js';

export const gemma3 = decoderFamily(['gemma3_text'], (c: Json): DecoderSpec => {
  const layers = num(c, 'num_hidden_layers');
  const hidden = num(c, 'hidden_size');
  const types = layerTypes(c, layers).map((t, i) => {
    // Old configs give the pattern instead of layer_types: every n-th layer is full.
    if (Array.isArray(c.layer_types)) return t;
    const n = num(c, 'sliding_window_pattern', num(c, '_sliding_window_pattern', 6));
    return (i + 1) % n === 0 ? 'full_attention' : 'sliding_attention';
  });
  const window = num(c, 'sliding_window', 4096);
  return llamaLikeSpec('gemma3', c, {
    normOffset: 1,
    act: activationOf(c, 'hidden_activation'),
    qkNorm: true,
    sandwichNorms: true,
    // transformers rounds sqrt(hidden) to the weights' dtype; weights here are float32.
    embedScale: Math.fround(Math.sqrt(hidden)),
    attnScale: Math.pow(num(c, 'query_pre_attn_scalar'), -0.5),
    attnSoftcap: c.attn_logit_softcapping == null ? 0 : num(c, 'attn_logit_softcapping'),
    finalSoftcap: c.final_logit_softcapping == null ? 0 : num(c, 'final_logit_softcapping'),
    tieEmbeddings: bool(c, 'tie_word_embeddings', true),
    layerWindow: types.map((t) => (t === 'sliding_attention' ? window : 0)),
    layerRope: types.map((t) => ropeParams(c, t, 'rope_local_base_freq')),
  });
});
