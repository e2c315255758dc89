// Builds the CPU kernels (AssemblyScript sources in src/backend/cpu/assembly/) into two WebAssembly binaries:
// one with relaxed-SIMD FMA, one with plain SIMD. The runtime picks whichever the engine accepts.
// Output sits next to the compiled loader (dist/src/backend/cpu/) so browsers and Node find it
// through import.meta.url.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const asc = join(dirname(createRequire(import.meta.url).resolve('assemblyscript/package.json')), 'bin', 'asc.js');
const entry = join(root, 'src/backend/cpu/assembly/index.ts');
const outDir = join(root, 'dist/src/backend/cpu');
mkdirSync(outDir, { recursive: true });

// assembly/unary.ts and assembly/binary.ts are generated from the tables of elementwise ops
// (src/backend/elementwise-ops.ts): the generator is TypeScript, bundled here with esbuild (tsc runs
// after this script). A file is rewritten only when its text changes.
{
  const bundle = await build({
    entryPoints: [join(root, 'src/backend/cpu/elementwise-codegen.ts')],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    write: false,
  });
  const url = `data:text/javascript;base64,${Buffer.from(bundle.outputFiles[0].text).toString('base64')}`;
  for (const [name, text] of Object.entries((await import(url)).generatedAssembly())) {
    const file = join(root, 'src/backend/cpu/assembly', name);
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) writeFileSync(file, text);
  }
}

const common = [
  entry,
  '-O3',
  '--noAssert',
  '--runtime',
  'stub',
  '--enable',
  'simd',
  '--enable',
  'threads',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory',
  '32',
  '--maximumMemory',
  '65536',
  // Static data of the module lives in the first 1 MiB; the JS allocator hands out memory above it.
];
for (const [name, extra] of [
  ['kernels-simd', []],
  ['kernels-relaxed', ['--enable', 'relaxed-simd']],
]) {
  execFileSync(process.execPath, [asc, ...common, ...extra, '-o', join(outDir, `${name}.wasm`)], { stdio: 'inherit' });
}
