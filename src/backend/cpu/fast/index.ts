// The WebAssembly kernels' TypeScript wrappers (float32; byte addresses into the runtime memory).
export * from './attention.js';
export * from './copy.js';
export * from './elementwise.js';
export * from './embedding.js';
export * from './matmul.js';
export * from './norm.js';
export * from './optim.js';
export * from './random.js';
export * from './reduce.js';
export * from './rope.js';
export * from './softmax.js';
export * from './unary.js';
export * from './bf16.js';
