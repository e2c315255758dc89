// Llama (1, 2, 3.x incl. rope_scaling type llama3; SmolLM2 and TinyLlama share it).
import { llamaLikeSpec } from './config.js';
import { decoderFamily } from './family.js';

export const llama = decoderFamily(['llama'], (c) => llamaLikeSpec('llama', c));
