// Checkpoint I/O: safetensors files, Hugging Face model folders, PEFT LoRA adapters, atomic writes.
// Node only (node:fs); browsers import dtype, half, raw-tensor and safetensors-format directly.
export * from './atomic.js';
export * from './dtype.js';
export * from './half.js';
export * from './hf.js';
export * from './peft-config.js';
export * from './peft.js';
export * from './raw-tensor.js';
export * from './safetensors-format.js';
export * from './safetensors.js';
