// AssemblyScript entry of the CPU kernels. Every parallel kernel takes its own arguments followed by
// (start, end, scratch): the work range [start, end) this thread computes and a per-thread scratch
// area (runtime.ts, SCRATCH_BYTES). Kernels return 0, or an error code the runtime turns into a message.
export * from './basic';
export * from './attention';
