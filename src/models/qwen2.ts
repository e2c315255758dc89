// Qwen2 / Qwen2.5: Llama with biases on q, k and v (none on o); sliding layers per layer_types.
import { llamaLikeSpec } from './config.js';
import { decoderFamily } from './family.js';

export const qwen2 = decoderFamily(['qwen2'], (c) => llamaLikeSpec('qwen2', c, { qkvBias: true, oBias: false }));
