// Node only: asks for a WebGPU adapter in a child process. Dawn's native code writes warnings
// straight to the process's stderr while it enumerates adapters (Mesa lavapipe: two lines of
// "max...BuffersPerPipelineLayout artificially reduced"), where JavaScript cannot catch them.
// `--device auto` asks here first, so that where the only adapter runs on the CPU Dawn never loads
// in tsdpo's process and the user sees tsdpo's one-line notice alone. Node modules are imported
// dynamically (a browser bundle of the engine must not import them).
import type { AdapterProbe, GpuOptions } from './gpu.js';

// The child imports gpu.js, asks, prints one JSON line and exits (Dawn would keep it alive).
const CHILD =
  'const { probeAdapter } = await import(process.argv[1]);\n' +
  'process.stdout.write(JSON.stringify(await probeAdapter(JSON.parse(process.argv[2]))) + "\\n");\n' +
  'process.exit(0);';

/** probeAdapter in a child process; its stderr (Dawn's warnings) is dropped, or shown with TSDPO_DEBUG. */
export async function probeAdapterInChild(opts: GpuOptions = {}): Promise<AdapterProbe> {
  const { execFile } = await import('node:child_process');
  const gpuModule = new URL('./gpu.js', import.meta.url).href;
  const timeout = (opts.timeoutMs ?? 30000) + 10000;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', CHILD, gpuModule, JSON.stringify(opts)],
      { timeout },
      (err, stdout, stderr) => {
        if (process.env.TSDPO_DEBUG && stderr) process.stderr.write(stderr);
        const last = stdout.trim().split('\n').at(-1) ?? '';
        try {
          resolve(JSON.parse(last) as AdapterProbe);
        } catch {
          const why = err ? err.message.split('\n')[0] : `unexpected output ${JSON.stringify(last)}`;
          resolve({ ok: false, reason: `the WebGPU adapter probe (a child process) failed: ${why}` });
        }
      },
    );
  });
}
