// The browser entry's import graph holds no Node module: src/browser.ts (and the CPU backend's
// kernel thread script, which a page starts as its own Web Worker) bundled with esbuild for the
// browser platform, with no stub and no external for Node's built-in modules, must never reach one.
// A plugin sees every import before resolution (so a "browser" field in package.json cannot hide a
// stub from it) and reports each Node module with the chain of imports that leads to it. Node-only
// modules bundled the same way must be caught, which shows that the check sees them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { build, type Metafile, type Plugin } from 'esbuild';
import { ROOT } from '../helpers/assets.js';

const BUILTINS = new Set(builtinModules.map((m) => m.replace(/^node:/, '')));
const isBuiltin = (spec: string): boolean => spec.startsWith('node:') || BUILTINS.has(spec.split('/')[0]);

/** Every Node module the bundle of `entry` reaches, as "node:fs <- a.js <- b.js ... <- entry". */
async function nodeModulesReached(entry: string): Promise<string[]> {
  const found: { spec: string; importer: string }[] = [];
  const catchNode: Plugin = {
    name: 'catch-node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (a) => {
        if (!isBuiltin(a.path)) return undefined;
        found.push({ spec: a.path, importer: relative(ROOT, a.importer) });
        return { path: a.path, external: true }; // recorded; kept out so that the whole graph is walked
      });
    },
  };
  const r = await build({
    entryPoints: [join(ROOT, entry)],
    absWorkingDir: ROOT,
    bundle: true,
    write: false,
    outdir: join(ROOT, 'dist/.bundle-test'),
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    metafile: true,
    logLevel: 'silent',
    plugins: [catchNode],
  });
  const chain = chainsFrom(r.metafile, relative(ROOT, join(ROOT, entry)));
  return found.map(({ spec, importer }) => `${spec} <- ${chain(importer)}`);
}

/** The shortest import chain from `entry` to a file of the bundle, as "file <- ... <- entry". */
function chainsFrom(meta: Metafile, entry: string): (file: string) => string {
  const prev = new Map<string, string | null>([[entry, null]]);
  const queue = [entry];
  while (queue.length > 0) {
    const f = queue.shift()!;
    for (const i of meta.inputs[f]?.imports ?? [])
      if (!i.external && !prev.has(i.path)) {
        prev.set(i.path, f);
        queue.push(i.path);
      }
  }
  return (file) => {
    const out: string[] = [];
    for (let f: string | null | undefined = file; f; f = prev.get(f)) out.push(f);
    return out.join(' <- ');
  };
}

for (const entry of ['dist/src/browser.js', 'dist/src/backend/cpu/worker.js']) {
  test(`${entry} bundled for browsers reaches no Node module (no stubs, no externals)`, async () => {
    const reached = await nodeModulesReached(entry);
    assert.deepEqual(
      reached,
      [],
      `${entry} reaches Node modules:\n  ${reached.join('\n  ')}\n` +
        'move the file access behind a module only src/index.ts or the CLI imports, or behind #host (src/host/)',
    );
  });
}

test('the check sees Node modules, imported statically or dynamically, with the chain to them', async () => {
  // The Node half of a split (adapter folders) and the WebGPU probe (a dynamic import of child_process).
  const folders = await nodeModulesReached('dist/src/models/lora.js');
  assert.ok(
    folders.includes('node:fs <- dist/src/io/peft.js <- dist/src/models/lora.js'),
    `expected node:fs through io/peft.js among: ${folders.join('; ')}`,
  );
  const probe = await nodeModulesReached('dist/src/backend/webgpu/probe.js');
  assert.deepEqual(probe, ['node:child_process <- dist/src/backend/webgpu/probe.js']);
});

test('package.json stubs no module for browsers; #host picks host/node.js in Node, host/web.js elsewhere', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.browser, undefined, `package.json's "browser" field maps ${JSON.stringify(pkg.browser)}`);
  assert.equal(pkg.imports['#host'].node, './dist/src/host/node.js');
  assert.equal(pkg.imports['#host'].default, './dist/src/host/web.js');
});
