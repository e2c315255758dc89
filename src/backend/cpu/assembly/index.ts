// AssemblyScript entry of the CPU kernels. Every parallel kernel takes its own arguments followed by
// (start, end, scratch): the work range [start, end) this thread computes and a per-thread scratch
// area (runtime.ts, SCRATCH_BYTES). Kernels return 0, or an error code the runtime turns into a message.
export * from './basic';
export * from './matmul';
export * from './unary';
export * from './binary';
export * from './elementwise';
export * from './copy';
export * from './reduce';
export * from './softmax';
export * from './embedding';
export * from './norm';
export * from './rope';
export * from './optim';
export * from './random';
export * from './attention';
export * from './bf16';
