// The tensor engine's public surface: tensors, autograd, ops, backend interface.
export * from './dtype.js';
export * from './shape.js';
export * from './backend.js';
export type * from './kernels.js';
export * from './tensor.js';
export * from './autograd.js';
export * from './ops/index.js';
export * from './random.js';
