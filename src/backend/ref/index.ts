// The reference kernels (plain TypeScript over typed arrays; float32 or float64).
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
