// The WebGPU backend's public surface (browser-safe: nothing here imports a Node module).
export { WebGpuBackend, type WebGpuOptions } from './backend.js';
export { acquireGpu, isSoftwareAdapter, type GpuOptions, type GpuResult } from './gpu.js';
