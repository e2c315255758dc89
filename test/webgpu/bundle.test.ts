// The engine and the WebGPU backend bundle for browsers: esbuild (platform browser) must build
// the core + WebGPU backend with no Node module at all, and the whole engine (CPU backend
// included) with Node modules reached only through dynamic import() behind the Node check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { build } from 'esbuild';
import { ROOT } from '../helpers/assets.js';

async function bundle(contents: string, external: string[] = []): Promise<string> {
  const out = await build({
    stdin: { contents, resolveDir: ROOT, loader: 'ts', sourcefile: 'entry.ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    external,
    logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}

test('core + WebGPU backend bundle for the browser without any Node module', async () => {
  const code = await bundle(`
    export * from './src/core/index.ts';
    export { WebGpuBackend } from './src/backend/webgpu/index.ts';`);
  assert.match(code, /class _?WebGpuBackend/, 'the backend is in the bundle');
  assert.doesNotMatch(code, /["']node:|require\(/, 'no Node module and no require');
  // Dawn's Node module is loaded through a computed specifier that bundlers leave alone.
  assert.doesNotMatch(code, /from\s*["']webgpu["']/);
});

test('the engine (CPU and WebGPU backends) reaches Node modules only through dynamic import()', async () => {
  const code = await bundle(`export { initEngine } from './src/engine.ts';`, ['node:*']);
  assert.doesNotMatch(code, /(from|import)\s*["']node:/, 'no static import of a Node module');
  assert.doesNotMatch(code, /require\(/);
  assert.match(code, /import\(["']node:/, 'the Node path is there, dynamically');
});
