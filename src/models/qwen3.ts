// Qwen3: Llama with an RMSNorm on every query and key head (q_norm, k_norm) before rotary.
import { llamaLikeSpec } from './config.js';
import { decoderFamily } from './family.js';

export const qwen3 = decoderFamily(['qwen3'], (c) => llamaLikeSpec('qwen3', c, { qkNorm: true }));
