// Random initialisation of a model from a config, as transformers' _init_weights does: normal(0,
// initializer_range) for projections and embeddings, zero biases, unit norm weights (zero for
// Gemma's (1 + w) norms), and GPT-2's residual projections scaled by 1/sqrt(2 n_layer).
import { getBackend, type Backend } from '../core/backend.js';
import { Rng } from '../core/random.js';
import { sizeOf } from '../core/shape.js';
import { keep, tensor, type Tensor } from '../core/tensor.js';
import type { CausalLM, Json } from './model.js';
import { familyOf } from './registry.js';

export function initModel(config: Json, seed = 0, backend: Backend = getBackend()): CausalLM {
  const family = familyOf(config);
  const spec = family.spec(config);
  const rng = new Rng(seed);
  const std = typeof config.initializer_range === 'number' ? config.initializer_range : 0.02;
  const layers = Number(config.n_layer ?? config.num_hidden_layers ?? 1);
  const gemmaNorm = family.modelTypes.includes('gemma3_text');
  const params = new Map<string, Tensor>();
  for (const [name, shape] of family.shapes(spec)) {
    const n = sizeOf(shape);
    const data = new Float32Array(n);
    const isNorm = /(norm|ln_\d|ln_f)[^.]*\.weight$/.test(name);
    if (name.endsWith('.bias')) {
      // zeros
    } else if (isNorm) {
      if (!gemmaNorm) data.fill(1);
    } else {
      const s = family.modelTypes.includes('gpt2') && /c_proj\.weight$/.test(name) ? std / Math.sqrt(2 * layers) : std;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * s;
    }
    const t = keep(tensor(data, shape, 'f32', backend));
    t.name = name;
    params.set(name, t);
  }
  return family.build(spec, config, params);
}
