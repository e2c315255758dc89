// The examples run as written: examples/dpo.mjs in Node (importing the package by name, resolved
// through package.json's exports), and examples/browser/ bundled with esbuild and opened in headless
// Chromium (its Web Worker trains through the browser entry). DPO must widen every pair's margin
// log pi(chosen) - log pi(rejected) on the demo model.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/assets.js';
import { REPORT, runInChromium } from '../browser/harness.js';

function checkRun(r: { steps: number; before: number[]; after: number[] }, where: string): void {
  assert.equal(r.steps, 8, `${where}: steps`);
  assert.equal(r.before.length, 4);
  r.before.forEach((b, i) =>
    assert.ok(r.after[i] > b + 1, `${where}: pair ${i}'s margin went from ${b} to ${r.after[i]}`),
  );
}

test("examples/dpo.mjs: DPO on the demo model through `import ... from 'tsdpo'` in Node", { timeout: 120_000 }, () => {
  const out = execFileSync(process.execPath, ['examples/dpo.mjs'], {
    cwd: ROOT,
    env: { ...process.env, TSDPO_DEVICE: 'cpu' },
    encoding: 'utf8',
  });
  const lines = out.trim().split('\n');
  assert.match(lines[0], /^step 4: loss \d\.\d{4}, rewards\/margins /);
  checkRun(JSON.parse(lines.at(-1)!), 'node');
});

test(
  'examples/browser: the same DPO in a Web Worker, bundled with esbuild, in headless Chromium',
  { timeout: 180_000 },
  async (t) => {
    execFileSync(process.execPath, ['examples/browser/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
    // The example page as written, served at / with its folder as the base URL, and a listener that reports its result.
    const html = readFileSync(join(ROOT, 'examples/browser/index.html'), 'utf8');
    const page =
      html.replace(/<meta charset="utf-8"\s*\/?>/, '<meta charset="utf-8"><base href="/examples/browser/">') +
      `<script>${REPORT} addEventListener('tsdpo-example', ({ detail: e }) => report(e.type === 'done' ? { ok: ` +
      `true, ...e, log: document.getElementById('log').textContent } : { ok: false, error: e.message ` +
      `}));</script>`;
    const r = await runInChromium(t, page, ['--disable-gpu'], 150_000);
    if (!r) return;
    checkRun(r, 'browser');
    assert.match(r.log, /step 8: loss \d\.\d{4}, rewards\/margins /);
  },
);
