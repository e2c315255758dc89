// A model family: how to read its config.json, which tensors it expects, how to rename a
// checkpoint's quirks, and how to build the model. The registry lists the families.
import type { Tensor } from '../core/tensor.js';
import { DecoderLM, decoderShapes, type DecoderSpec } from './decoder.js';
import type { CausalLM, Json, ParamShapes } from './model.js';

export interface Family<S = unknown> {
  /** config.json model_type values this family reads. */
  modelTypes: string[];
  spec(config: Json): S;
  shapes(spec: S): ParamShapes;
  /** Checkpoint name -> our (HF canonical) name, or null to drop the tensor (known buffers). */
  sanitize(names: string[], spec: S): Map<string, string | null>;
  build(spec: S, config: Json, params: Map<string, Tensor>): CausalLM;
  /** LoRA target_modules when none are given: PEFT's default for these model types. */
  loraTargetModules: string[];
}

/** A Llama-style family from its spec function. */
export function decoderFamily(modelTypes: string[], spec: (c: Json) => DecoderSpec): Family<DecoderSpec> {
  return {
    modelTypes,
    spec,
    shapes: decoderShapes,
    sanitize: (names, s) => {
      const map = new Map<string, string | null>();
      for (const n of names) {
        // Rotary buffers of old checkpoints, and a saved copy of a tied head.
        if (n.endsWith('.rotary_emb.inv_freq') || (s.tieEmbeddings && n === 'lm_head.weight')) map.set(n, null);
        else map.set(n, n.startsWith('language_model.') ? n.slice('language_model.'.length) : n);
      }
      return map;
    },
    build: (s, config, params) => new DecoderLM(s, config, params),
    loraTargetModules: ['q_proj', 'v_proj'],
  };
}
