// Mistral: Llama with an optional sliding window on every layer.
import { llamaLikeSpec } from './config.js';
import { decoderFamily } from './family.js';

export const mistral = decoderFamily(['mistral'], (c) => llamaLikeSpec('mistral', c));
