// Bundles the browser example with esbuild into examples/browser/out/: the worker (the library's
// browser entry, through package.json's "browser" condition), the CPU backend's own thread script
// and its WebAssembly kernels, which the engine finds beside the bundle (new URL(..., import.meta.url)).
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const out = here('./out/');
mkdirSync(out, { recursive: true });
// The browser entry's graph holds no Node module (test/browser/bundle.test.ts): the host layer comes
// from package.json's "imports" ('#host' resolves to dist/src/host/web.js under the browser conditions).
const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  logLevel: 'warning',
};
await build({ ...common, entryPoints: [here('./dpo-worker.mjs')], outfile: `${out}dpo-worker.js` });
await build({ ...common, entryPoints: [here('../../dist/src/backend/cpu/worker.js')], outfile: `${out}worker.js` });
for (const f of ['kernels-relaxed.wasm', 'kernels-simd.wasm'])
  copyFileSync(here(`../../dist/src/backend/cpu/${f}`), `${out}${f}`);
