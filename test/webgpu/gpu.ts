// The WebGPU backend for the tests, opened once per test file (software adapters such as
// lavapipe included), or the reason there is none. Without an adapter the WebGPU tests print a
// loud WEBGPU TESTS SKIPPED line and skip; CI installs lavapipe (scripts/install-lavapipe.sh) and
// sets TSDPO_REQUIRE_WEBGPU=1, so that there they run or fail.
import type { WebGpuBackend } from '../../src/backend/webgpu/index.js';
import { webgpuBackend } from '../../src/engine.js';

async function open(): Promise<{ backend: WebGpuBackend | null; skip: string | false }> {
  try {
    const backend = await webgpuBackend(true);
    return { backend, skip: false };
  } catch (e) {
    const reason = (e as Error).message;
    // CI installs lavapipe and sets this: there a missing adapter is a failure, not a skip.
    if (process.env.TSDPO_REQUIRE_WEBGPU === '1') throw new Error(`TSDPO_REQUIRE_WEBGPU=1 but ${reason}`);
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
