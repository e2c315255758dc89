// Runs a test page in headless Chromium: a local server gives the repository's files (with the
// cross-origin isolation headers that SharedArrayBuffer needs) and the page at /, the page posts
// one JSON result to /result. Skipped loudly where no Chromium is installed (CI installs it and
// sets TSDPO_REQUIRE_BROWSER=1, so that there it runs or fails).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) =>
  existsSync(p),
);
const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.html': 'text/html',
  '.map': 'application/json',
  '.json': 'application/json',
};

/** The page's script posts its result with this: `report({ ok: true, ... })`. */
export const REPORT = `const report = (body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) });`;

function serve(page: string, onResult: (body: string) => void): Promise<Server> {
  const server = createServer((req, res) => {
    // Cross-origin isolation: SharedArrayBuffer (the shared wasm memory) needs both headers.
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    if (req.method === 'POST' && req.url === '/result') {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        res.end('ok');
        onResult(body);
      });
      return;
    }
    if (req.url === '/' || req.url === '/index.html') {
      res.setHeader('Content-Type', 'text/html');
      res.end(page);
      return;
    }
    const file = normalize(join(ROOT, decodeURIComponent((req.url ?? '').split('?')[0])));
    if (!file.startsWith(ROOT) || !existsSync(file)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * Opens `page` in headless Chromium with `flags` and returns the result it posts (asserting its
 * `ok`), or null when the test was skipped for want of Chromium.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function runInChromium(
  t: TestContext,
  page: string,
  flags: string[],
  timeoutMs = 90_000,
): Promise<any | null> {
  if (!CHROMIUM) {
    assert.ok(!process.env.TSDPO_REQUIRE_BROWSER, 'TSDPO_REQUIRE_BROWSER is set but no Chromium was found');
    console.log("BROWSER TEST SKIPPED: no Chromium found (.ci/run installs Debian's chromium)");
    t.skip('no Chromium');
    return null;
  }
  let resolveResult: (s: string) => void = () => {};
  const result = new Promise<string>((r) => {
    resolveResult = r;
  });
  const server = await serve(page, (b) => resolveResult(b));
  const port = (server.address() as { port: number }).port;
  const profile = mkdtempSync(join(tmpdir(), 'tsdpo-chromium-'));
  const browser = spawn(
    CHROMIUM,
    [
      '--headless=new',
      '--no-sandbox',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      ...flags,
      `http://127.0.0.1:${port}/`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  ); // own process group: killed as a whole
  let browserLog = '';
  browser.stderr!.on('data', (d) => {
    browserLog = (browserLog + String(d)).slice(-4000);
  });
  try {
    const seconds = Math.round(timeoutMs / 1000);
    const body = await Promise.race([
      result,
      new Promise<string>((_, rej) =>
        setTimeout(
          () => rej(new Error(`no result from the page in ${seconds} s; Chromium said:\n${browserLog}`)),
          timeoutMs,
        ).unref(),
      ),
    ]);
    const r = JSON.parse(body);
    assert.ok(r.ok, r.error);
    return r;
  } finally {
    server.closeAllConnections();
    server.close();
    const exited =
      browser.exitCode !== null || browser.signalCode !== null
        ? Promise.resolve()
        : new Promise((r) => browser.once('exit', r));
    try {
      process.kill(-browser.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await exited;
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch {
      /* a temp folder */
    }
  }
}
