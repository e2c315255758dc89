// Builds the optional native kernels (native/: a Node addon) with node-gyp against the Node headers
// already on this machine: never downloads, and never fails the install. When the headers, the
// compiler, make or python are missing, it prints one line and the WebAssembly kernels are used.
// Run by `npm install` / `npm ci` (the "install" script) or `npm run build:native`; the full
// compiler output goes to native/build.log. TSDPO_NATIVE=0 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native');
const logPath = join(dir, 'build.log');
const addonPath = join(dir, 'build', 'Release', 'tsdpo_native.node');
const say = (what) => console.log(`tsdpo: ${what}`);
const fallback = (why) => {
  say(`native kernels not built (${why}); the WebAssembly kernels will be used`);
  process.exit(0);
};

if (process.env.TSDPO_NATIVE === '0') fallback('TSDPO_NATIVE=0');

// Headers: npm's nodedir, else the prefix of this node binary (/usr for Debian's nodejs).
const nodedir = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..')].find(
  (d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')),
);
if (!nodedir)
  fallback(
    `no Node headers (include/node/node_api.h) next to ${process.execPath}; install the Node development headers`,
  );

// node-gyp: the one npm runs scripts with, else npm's bundled copy, else a local dependency.
const gyp = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  (() => {
    try {
      return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
    } catch {
      return undefined;
    }
  })(),
].find((p) => p && existsSync(p));
if (!gyp) fallback('node-gyp not found (it ships with npm)');

const log = openSync(logPath, 'w');
const build = spawnSync(
  process.execPath,
  [gyp, 'rebuild', `--nodedir=${nodedir}`, '--directory', dir, '--jobs', 'max'],
  {
    stdio: ['ignore', log, log],
    timeout: 600_000,
    env: { ...process.env, npm_config_nodedir: nodedir },
  },
);
closeSync(log);
if (build.status !== 0) {
  // The most telling line: a missing tool, a compiler error, node-gyp's own error, in that order.
  const lines = readFileSync(logPath, 'utf8')
    .split('\n')
    .map((l) => l.trim());
  const line = [/not found|No such file or directory/, /error:/, /^gyp ERR! stack Error: /, /ERR!/]
    .map((re) => lines.find((l) => re.test(l) && !l.startsWith('gyp info')))
    .find((l) => l !== undefined)
    ?.replace(/^gyp ERR! stack Error: /, '');
  fallback(
    `${(line ?? build.error?.message ?? `node-gyp exited with ${build.status}`).slice(0, 160)}; see native/build.log`,
  );
}

// Load it once in a child, so that a binary this machine cannot load is reported here.
const check = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(addonPath)}).info().kernel)`], {
  encoding: 'utf8',
});
if (check.status !== 0)
  fallback(`the built addon does not load: ${check.stderr.split('\n').find((l) => l.trim()) ?? ''}`);
const kernel = check.stdout.trim();
say(
  kernel === 'scalar'
    ? 'native kernels built, but this CPU has neither AVX2 nor AVX-512: the WebAssembly kernels will be used'
    : `native kernels built (${kernel})`,
);
