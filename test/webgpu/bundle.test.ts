// The engine and the WebGPU backend bundle for browsers: esbuild (platform browser) must build
// the core + WebGPU backend with no Node module at all, and the whole engine (CPU backend
// included) with the browser's host layer and no static Node import (test/browser/bundle.test.ts
// checks the public browser entry for any Node module at all).
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

test('the engine (CPU and WebGPU backends) bundles for the browser with its web host, Node modules never static', async () => {
  const code = await bundle(`export { initEngine } from './src/engine.ts';`, ['node:*']);
  assert.doesNotMatch(code, /(from|import)\s*["']node:/, 'no static import of a Node module');
  assert.doesNotMatch(code, /require\(/);
  // What the runtime takes from its host comes through '#host' (package.json imports): web.ts here.
  assert.match(code, /hardwareConcurrency/, "the browser's host (src/host/web.ts) is in the bundle");
});
