// Finding a WebGPU device: `navigator.gpu` in browsers, Dawn (the npm package `webgpu`) in Node.
// The Node module is imported dynamically behind a Node check, so a browser bundle of the engine
// never sees it. Failures come back as a reason string, never a hang: every wait has a timeout.

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/**
 * Dawn's instance. It must stay strongly reachable for the whole process: if V8 collects it,
 * Dawn frees its instance under live devices and the process crashes in
 * InstanceBase::ProcessEvents (measured with webgpu 0.6.2). A module-level variable that is
 * never reset keeps it alive.
 */
let dawnInstance: GPU | null = null;
const DAWN_MODULE = 'webgpu';
let dawnLoad: Promise<GPU> | null = null;

async function nodeGpu(): Promise<GPU> {
  dawnLoad ??= (async () => {
    // A computed specifier: bundlers for the browser must not follow it.
    const specifier = DAWN_MODULE;
    const mod = (await import(specifier)) as { create(options: string[]): GPU };
    const flags = (process.env.TSDPO_DAWN_FLAGS ?? '').split(';').filter(Boolean);
    dawnInstance = mod.create(flags);
    return dawnInstance;
  })();
  return dawnLoad;
}

export interface GpuOptions {
  /** Accept a software adapter (lavapipe, llvmpipe, SwiftShader): true for an explicit request. */
  allowFallback?: boolean;
  /** Milliseconds to wait for the adapter and the device (default 30 s). */
  timeoutMs?: number;
}

export interface AcquiredGpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Adapter name for reports, e.g. "nvidia-h200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  name: string;
  /** Whether the adapter runs on the CPU (a software rasteriser). */
  fallback: boolean;
}

export type GpuResult = { ok: true; gpu: AcquiredGpu } | { ok: false; reason: string };

/** True for adapters that emulate a GPU on the CPU (Dawn marks lavapipe as a fallback adapter). */
export function isSoftwareAdapter(info: GPUAdapterInfo, adapter: GPUAdapter): boolean {
  const fb =
    (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return fb === true || info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader|software/.test(text);
}

export function adapterName(info: GPUAdapterInfo): string {
  return info.description || info.device || `${info.vendor} ${info.architecture}`.trim() || 'unknown adapter';
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Limits worth raising to the adapter's maximum (the defaults cap storage buffers at 128 MiB). */
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** The adapter on offer and whether it is accepted, or why there is none. */
type Found = { ok: true; adapter: GPUAdapter; name: string; fallback: boolean } | { ok: false; reason: string };

async function findAdapter(opts: GpuOptions, timeoutMs: number): Promise<Found> {
  let gpu: GPU | undefined;
  try {
    gpu = isNode ? await nodeGpu() : (globalThis.navigator as Navigator | undefined)?.gpu;
  } catch (e) {
    return { ok: false, reason: `the Dawn module (npm package webgpu) failed to load: ${(e as Error).message}` };
  }
  if (!gpu) return { ok: false, reason: 'this environment has no WebGPU (navigator.gpu is undefined)' };
  const adapter = await withTimeout(
    gpu.requestAdapter({ powerPreference: 'high-performance' }),
    timeoutMs,
    'requestAdapter',
  );
  if (!adapter) {
    return {
      ok: false,
      reason: 'no WebGPU adapter (on Linux: is a Vulkan driver installed? scripts/install-lavapipe.sh adds a CPU one)',
    };
  }
  const info = adapter.info;
  const fallback = isSoftwareAdapter(info, adapter);
  const name = adapterName(info);
  if (fallback && !opts.allowFallback) {
    return { ok: false, reason: `the only WebGPU adapter, ${name}, runs on the CPU` };
  }
  return { ok: true, adapter, name, fallback };
}

export type AdapterProbe = { ok: true; name: string; fallback: boolean } | { ok: false; reason: string };

/** Whether an adapter is there (and accepted), without opening a device: what probe.ts's child prints. */
export async function probeAdapter(opts: GpuOptions = {}): Promise<AdapterProbe> {
  try {
    const found = await findAdapter(opts, opts.timeoutMs ?? 30000);
    return found.ok ? { ok: true, name: found.name, fallback: found.fallback } : found;
  } catch (e) {
    return { ok: false, reason: `WebGPU adapter request failed: ${(e as Error).message}` };
  }
}

/** Finds an adapter and opens a device on it, or says why not. */
export async function acquireGpu(opts: GpuOptions = {}): Promise<GpuResult> {
  const timeoutMs = opts.timeoutMs ?? 30000;
  try {
    const found = await findAdapter(opts, timeoutMs);
    if (!found.ok) return found;
    const { adapter, name, fallback } = found;
    const requiredLimits: Record<string, number> = {};
    for (const k of RAISED_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[k];
      if (typeof v === 'number') requiredLimits[k] = v;
    }
    // Timestamps for the profiler (bench/gpu-dpo.ts --profile) where the adapter has them.
    const requiredFeatures: GPUFeatureName[] = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
    const device = await withTimeout(
      adapter.requestDevice({ requiredLimits, requiredFeatures }),
      timeoutMs,
      'requestDevice',
    );
    return { ok: true, gpu: { device, adapter, name, fallback } };
  } catch (e) {
    return { ok: false, reason: `WebGPU device creation failed: ${(e as Error).message}` };
  }
}
