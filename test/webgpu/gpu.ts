// The WebGPU backend for the tests, opened once per test file (software adapters such as
// lavapipe included), or the reason there is none. Without an adapter the WebGPU tests print a
// loud WEBGPU TESTS SKIPPED line and skip; CI installs lavapipe (scripts/install-lavapipe.sh) so
// that they run there.
import { WebGpuBackend } from '../../src/backend/webgpu/index.js';

async function open(): Promise<{ backend: WebGpuBackend | null; skip: string | false }> {
  try {
    const backend = await WebGpuBackend.create({ allowFallback: true });
    return { backend, skip: false };
  } catch (e) {
    const reason = (e as Error).message;
    const line = `WEBGPU TESTS SKIPPED: ${reason}`;
    console.log(`\n${'!'.repeat(line.length)}\n${line}\n${'!'.repeat(line.length)}\n`);
    return { backend: null, skip: line };
  }
}

export const GPU = await open();

/** The backend; only call inside tests that are skipped when there is none. */
export function gpu(): WebGpuBackend {
  if (!GPU.backend) throw new Error('no WebGPU backend');
  return GPU.backend;
}
