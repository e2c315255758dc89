// Makes sure better-sqlite3 (the studio's SQLite binding) has its native addon. Its own install
// script tries a prebuilt download first, which fails offline, then node-gyp, which downloads the
// Node headers unless told where they are; here node-gyp builds it from its bundled SQLite source
// against the headers of this Node (as build-native.mjs does for tsdpo's addon). Never fails the
// install: without the addon only `tsdpo studio` is unavailable, and it says so.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const require = createRequire(import.meta.url);
const say = (what) => console.log(`tsdpo: ${what}`);
const loads = () =>
  spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], {
    cwd: join(dirname(new URL(import.meta.url).pathname), '..'),
  }).status === 0;

let pkg;
try {
  pkg = dirname(require.resolve('better-sqlite3/package.json'));
} catch {
  process.exit(0);
} // not installed (production subset)
if (loads()) process.exit(0);

const nodedir = [process.env.npm_config_nodedir, resolve(dirname(process.execPath), '..')].find(
  (d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')),
);
const gyp = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].find((p) => p && existsSync(p));
if (!nodedir || !gyp) {
  say(
    `better-sqlite3 not built (${!nodedir ? 'no Node headers next to this node' : 'node-gyp not found'}); ` +
      `tsdpo studio will not start`,
  );
  process.exit(0);
}
say('building better-sqlite3 from source (SQLite, about a minute)');
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--release', `--nodedir=${nodedir}`, '--jobs', 'max'], {
  cwd: pkg,
  stdio: ['ignore', 'ignore', 'pipe'],
  encoding: 'utf8',
  timeout: 900_000,
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (r.status !== 0 || !loads())
  say(
    `better-sqlite3 not built: ` +
      `${(r.stderr ?? '').split('\n').find((l) => /error/i.test(l)) ?? `node-gyp exited with ${r.status}`}; ` +
      `tsdpo studio will not start`,
  );
else say('better-sqlite3 built');
