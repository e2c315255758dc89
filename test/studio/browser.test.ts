// The studio in real Chromium (Debian's, driven by playwright-core; never a downloaded browser):
// ten pairs labeled by keyboard across a kill -9 of the server, markup in prompts and completions
// shown as text, the page's export equal to the database; a DPO run started from the page lowers
// the loss and the comparison reports a win rate. Skipped loudly without Chromium, unless
// TSDPO_REQUIRE_BROWSER is set (CI), where it fails instead.
// TSDPO_STUDIO_SCREENSHOTS=DIR saves a screenshot of each screen there (the README's pictures).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Store } from '../../src/studio/store/store.js';
import { tempDir } from '../helpers/assets.js';
import { runCli } from '../helpers/cli.js';
import { DEMO_MODEL, startStudioCli, writePrompts, type RunningStudio } from './helpers.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const SHOTS = process.env.TSDPO_STUDIO_SCREENSHOTS;

async function launch(t: TestContext): Promise<Browser | null> {
  if (!CHROMIUM) {
    assert.ok(!process.env.TSDPO_REQUIRE_BROWSER, 'TSDPO_REQUIRE_BROWSER is set but no Chromium was found');
    console.log("BROWSER TEST SKIPPED: no Chromium found (.ci/run installs Debian's chromium)");
    t.skip('no Chromium');
    return null;
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}

async function open(browser: Browser, studio: RunningStudio): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  page.on('pageerror', (e) => {
    throw e;
  });
  await page.addInitScript(() => localStorage.setItem('tsdpo-labeler', 'ann'));
  await page.goto(studio.url);
  await page.waitForFunction(() => document.body.dataset.pair !== undefined);
  return page;
}

/** Presses `key` and waits for the page to show another pair. */
async function press(page: Page, key: string): Promise<void> {
  const before = await page.evaluate(() => document.body.dataset.pair);
  await page.keyboard.press(key);
  await page.waitForFunction((b) => document.body.dataset.pair !== b, before, { timeout: 20_000 });
}

/** A screenshot for the docs, once the page's highlight has faded. */
async function shot(page: Page, options: { path: string }): Promise<void> {
  await page.waitForTimeout(600);
  await page.screenshot(options);
}

const HTML = '<img src=x onerror="window.pwned=3">';

test(
  'studio in Chromium: ten pairs by keyboard across a kill -9, markup shown as text, export = database',
  { timeout: 120_000 },
  async (t) => {
    const browser = await launch(t);
    if (!browser) return;
    const dir = tempDir();
    const db = join(dir, 's.db');
    // An imported pair whose completions are markup: the first pair shown to a new labeler.
    writeFileSync(
      join(dir, 'seed.jsonl'),
      `${JSON.stringify({ prompt: 'Seed', chosen: `${HTML}good`, rejected: '<script>window.pwned=4</script>bad' })}\n`,
    );
    assert.equal(runCli(['studio', 'import', '--db', db, '--input', join(dir, 'seed.jsonl')], dir).status, 0);
    const args = ['--model', DEMO_MODEL, '--prompts', writePrompts(dir), '--db', db, '--max_new_tokens', '8'];
    let studio = await startStudioCli(args, dir);
    try {
      let page = await open(browser, studio);
      assert.equal(await page.textContent('#a'), `${HTML}good`);
      assert.equal(await page.locator('#a img, #b script, #prompt img, #prompt script').count(), 0);
      await press(page, '1'); // 1: the seed pair, A better
      await press(page, '2'); // 2
      await press(page, 't'); // 3
      // The third prompt of the file is markup, shown as text.
      assert.equal(await page.textContent('#prompt'), '<img src=x onerror="window.pwned=1">This place is');
      await press(page, 'b'); // 4
      if (SHOTS) await shot(page, { path: join(SHOTS, 'collect.png') });
      await page.keyboard.press('e');
      await page.fill('#edit-text', 'A fine <b>edited</b> answer.');
      const before = await page.evaluate(() => document.body.dataset.pair);
      await page.keyboard.press('Control+Enter'); // 5: the edit
      await page.waitForFunction((b) => document.body.dataset.pair !== b, before);

      // kill -9 while labelling, restart on the same database, go on.
      await studio.stop('SIGKILL');
      await page.close();
      studio = await startStudioCli(args, dir);
      page = await open(browser, studio);
      assert.match((await page.textContent('#progress')) ?? '', /^5 labeled by you/);
      await press(page, 's'); // skip (not a label that trains)
      await press(page, '1'); // 6
      await press(page, '2'); // 7
      await press(page, 'u'); // undo 7: the same pair again
      await press(page, '1'); // 7 again
      await press(page, '2'); // 8
      await press(page, '1'); // 9
      await press(page, '2'); // 10
      assert.equal(
        await page.evaluate(() => (window as unknown as { pwned?: number }).pwned),
        undefined,
        'no markup ran',
      );

      const s = new Store(db);
      const verdicts = s.db
        .prepare("SELECT verdict FROM labels WHERE labeler = 'ann' AND undone = 0 ORDER BY id")
        .all()
        .map((r) => (r as { verdict: string }).verdict);
      const rows = s.exportRows();
      s.close();
      // Ten labels by keyboard (the skip is kept as such; the undone 'b' is not standing).
      assert.deepEqual(verdicts, ['a', 'b', 'tie', 'both_bad', 'edit', 'skip', 'a', 'a', 'b', 'a', 'b']);
      // The page's export link gives the database's rows (the import's one, and ann's A/B and edit labels).
      await page.click('[data-tab=data]');
      const exported = await page.evaluate(
        async () => await (await fetch((document.getElementById('ex-jsonl') as HTMLAnchorElement).href)).text(),
      );
      assert.deepEqual(
        exported
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
        rows,
      );
      assert.equal(rows.length, 1 + 7 + 1, "the imported row, ann's seven A/B labels and her edit");
      assert.ok(rows.some((r) => r.chosen === 'A fine <b>edited</b> answer.'));
      if (SHOTS) await shot(page, { path: join(SHOTS, 'data.png') });
    } finally {
      await studio.stop('SIGKILL');
      await browser.close();
    }
  },
);

/** A studio whose database holds 16 imported pairs: positive completions chosen, negative ones rejected. */
async function studioWithPairs(): Promise<{ dir: string; studio: RunningStudio }> {
  const dir = tempDir();
  const db = join(dir, 's.db');
  const good = ['a wonderful, great film', 'happy and excellent', 'a lovely, perfect day'],
    bad = ['a terrible, awful mess', 'bad and boring', 'a sad, horrible day'];
  const pairs = Array.from({ length: 16 }, (_, i) =>
    JSON.stringify({ prompt: `Review ${i}: it was`, chosen: ` ${good[i % 3]}.`, rejected: ` ${bad[i % 3]}.` }),
  );
  writeFileSync(join(dir, 'pairs.jsonl'), `${pairs.join('\n')}\n`);
  assert.equal(runCli(['studio', 'import', '--db', db, '--input', join(dir, 'pairs.jsonl')], dir).status, 0);
  const studio = await startStudioCli(
    ['--model', DEMO_MODEL, '--prompts', writePrompts(dir), '--db', db, '--max_new_tokens', '8'],
    dir,
  );
  return { dir, studio };
}

test(
  'studio in Chromium: training in the tab (engine in a Web Worker) lowers the loss and saves a model folder',
  { timeout: 120_000 },
  async (t) => {
    const browser = await launch(t);
    if (!browser) return;
    const { dir, studio } = await studioWithPairs();
    try {
      const page = await open(browser, studio);
      await page.click('[data-tab=train]');
      await page.selectOption('#where', 'tab');
      await page.fill('#steps', '12');
      await page.click('#train-start');
      await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.run ?? ''), null, {
        timeout: 100_000,
      });
      const log = (await page.textContent('#train-log')) ?? '';
      assert.equal(await page.evaluate(() => document.body.dataset.run), 'done', log);
      const losses = await page.evaluate(() =>
        (window as unknown as { studioMetrics: { loss: number }[] }).studioMetrics.map((m) => m.loss),
      );
      assert.equal(losses.length, 12);
      assert.ok(
        Math.abs(losses[0] - Math.log(2)) < 1e-3,
        `the first step's loss is log 2 (policy = reference), got ${losses[0]}`,
      );
      assert.ok(losses[11] < 0.5 * losses[0], `loss ${losses[0]} -> ${losses[11]}`);
      const name = /model saved on the server as (run-\S+-tab)/.exec(log)?.[1];
      assert.ok(name, log);
      const files = readdirSync(join(dir, 's-runs', name));
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'metrics.jsonl'])
        assert.ok(files.includes(f), `${f} in ${files}`);
      t.diagnostic(
        `tab: ${log.split('\n').find((l) => l.startsWith('engine:'))}; ` +
          `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`,
      );
      if (SHOTS) await shot(page, { path: join(SHOTS, 'train-tab.png') });
    } finally {
      await studio.stop('SIGKILL');
      await browser.close();
    }
  },
);

test(
  'studio in Chromium: a DPO run started from the page lowers the loss; the comparison gives a win rate',
  { timeout: 150_000 },
  async (t) => {
    const browser = await launch(t);
    if (!browser) return;
    const { studio } = await studioWithPairs();
    try {
      const page = await open(browser, studio);
      await page.click('[data-tab=train]');
      await page.fill('#steps', '12');
      await page.click('#train-start');
      await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.run ?? ''), null, {
        timeout: 120_000,
      });
      const state = (await (await studio.call('/api/state')).json()) as {
        run: { status: string; metrics: { loss?: number }[] };
      };
      assert.equal(state.run.status, 'done', (await page.textContent('#train-log')) ?? '');
      const losses = state.run.metrics.filter((m) => typeof m.loss === 'number').map((m) => m.loss!);
      assert.equal(losses.length, 12);
      assert.ok(
        Math.abs(losses[0] - Math.log(2)) < 1e-3,
        `the first step's loss is log 2 (policy = reference), got ${losses[0]}`,
      );
      assert.ok(losses[11] < 0.5 * losses[0], `loss ${losses[0]} -> ${losses[11]}`);
      if (SHOTS) await shot(page, { path: join(SHOTS, 'train.png') });
      await page.click('[data-tab=compare]');
      await page.fill('#reward-n', '2');
      await page.click('#compare-reward');
      await page.waitForFunction(
        () =>
          /Win rate|error|no /i.test(document.getElementById('compare-auto')!.textContent ?? '') &&
          !/judging/.test(document.getElementById('compare-auto')!.textContent ?? ''),
      );
      assert.match(
        (await page.textContent('#compare-auto')) ?? '',
        /^Win rate of the policy by sentiment: \d+\.\d% ± \d+\.\d% over 2 prompts$/,
      );
      if (SHOTS) await shot(page, { path: join(SHOTS, 'compare.png') });
      // The blind human comparison: held-out prompts in the labelling screen, the result on the Compare tab.
      await page.click('#compare-start');
      await page.waitForFunction(() => document.body.dataset.pairKind === 'compare');
      await press(page, '1');
      await press(page, '2');
      if (SHOTS) await shot(page, { path: join(SHOTS, 'compare-judge.png') });
      await page.click('[data-tab=compare]');
      await page.waitForFunction(() => /Win rate/.test(document.getElementById('compare-human')!.textContent ?? ''));
      assert.match(
        (await page.textContent('#compare-human')) ?? '',
        /^Win rate of the policy: \d+\.\d% ± \d+\.\d% \(2 judgments; ties and both-bad count 1\/2\)$/,
      );
      const pairs = await (await studio.call('/api/state')).json();
      assert.equal(pairs.progress.total, 16, 'comparison judgments are not counted as training labels');
    } finally {
      await studio.stop('SIGKILL');
      await browser.close();
    }
  },
);
