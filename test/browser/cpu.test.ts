// The CPU backend in a real browser: headless Chromium loads the engine as ES modules, the same
// kernels-*.wasm, Web Workers on a shared WebAssembly.Memory, and trains a few steps; the page
// posts its results back. Skipped loudly where no Chromium is installed (CI installs it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));

const PAGE = `<!doctype html><meta charset="utf-8"><title>tsdpo cpu</title><script type="module">
const report = (body) => fetch('/result', { method: 'POST', body: JSON.stringify(body) });
try {
  const E = await import('/dist/src/core/index.js');
  const { initEngine } = await import('/dist/src/engine.js');
  const backend = await initEngine({ device: 'cpu', threads: 2 });
  const rt = backend.rt;
  // A product big enough to run on both threads, checked against plain JavaScript.
  const M = 96, K = 80, N = 72;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));
  const c = await E.tidy(() => E.matmul(E.tensor(a, [M, K]), E.tensor(b, [K, N]))).toArray();
  let err = 0;
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
    err = Math.max(err, Math.abs(s - c[i * N + j]));
  }
  // A few gradient steps on a quadratic: the loss must fall.
  const w = E.keep(E.param(E.tensor(Float32Array.from({ length: 256 }, (_, i) => Math.sin(3 * i)))));
  const losses = [];
  for (let s = 0; s < 5; s++) {
    losses.push(await E.tidyAsync(async () => {
      const l = E.mean(E.square(E.gelu(w, 'tanh')));
      E.backward(l);
      // Plain gradient descent with the engine's own kernels: w -= 0.5 * grad.
      backend.kernels.affine({ x: w.grad.storage, out: w.grad.storage, n: 256, scale: -0.5, shift: 0 });
      backend.kernels.binary({ op: 'add', a: w.storage, b: w.grad.storage, out: w.storage, shape: [256], aStrides: [1], bStrides: [1] });
      w.grad.dispose(); w.grad = null;
      return l.item();
    }));
  }
  report({ ok: true, threads: rt.threads, relaxed: rt.relaxed, isolated: self.crossOriginIsolated, err, losses });
} catch (e) {
  report({ ok: false, error: String(e && e.stack || e) });
}
</script>`;

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.map': 'application/json' };

function serve(onResult: (body: string) => void): Promise<Server> {
  const server = createServer((req, res) => {
    // Cross-origin isolation: SharedArrayBuffer (the shared wasm memory) needs both headers.
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    if (req.method === 'POST' && req.url === '/result') {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => { res.end('ok'); onResult(body); });
      return;
    }
    if (req.url === '/' || req.url === '/index.html') {
      res.setHeader('Content-Type', 'text/html');
      res.end(PAGE);
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

test('CPU backend (WebAssembly kernels, Web Workers, shared memory) trains in headless Chromium', { timeout: 120_000 }, async (t) => {
  if (!CHROMIUM) {
    assert.ok(!process.env.TSDPO_REQUIRE_BROWSER, 'TSDPO_REQUIRE_BROWSER is set but no Chromium was found');
    console.log('BROWSER TEST SKIPPED: no Chromium found (.ci/run installs Debian\'s chromium)');
    t.skip('no Chromium');
    return;
  }
  let resolveResult: (s: string) => void = () => {};
  const result = new Promise<string>((r) => { resolveResult = r; });
  const server = await serve((b) => resolveResult(b));
  const port = (server.address() as { port: number }).port;
  const profile = mkdtempSync(join(tmpdir(), 'tsdpo-chromium-'));
  const browser = spawn(CHROMIUM, [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/`,
  ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true }); // own process group: killed as a whole
  let browserLog = '';
  browser.stderr!.on('data', (d) => { browserLog = (browserLog + String(d)).slice(-4000); });
  try {
    const body = await Promise.race([result, new Promise<string>((_, rej) => setTimeout(() => rej(new Error(`no result from the page in 90 s; Chromium said:\n${browserLog}`)), 90_000).unref())]);
    const r = JSON.parse(body);
    assert.ok(r.ok, r.error);
    assert.equal(r.isolated, true, 'page is cross-origin isolated');
    assert.equal(r.threads, 2);
    assert.ok(r.err < 1e-3, `matmul error ${r.err}`);
    assert.ok(r.losses[4] < r.losses[0], `losses ${r.losses}`);
  } finally {
    server.closeAllConnections();
    server.close();
    const exited = browser.exitCode !== null || browser.signalCode !== null ? Promise.resolve() : new Promise((r) => browser.once('exit', r));
    try { process.kill(-browser.pid!, 'SIGKILL'); } catch { /* already gone */ }
    await exited;
    try { rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }); } catch { /* a temp folder */ }
  }
});
