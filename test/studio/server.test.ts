// `tsdpo studio` as a process: it listens on 127.0.0.1, refuses every request without its token
// (401), and a kill -9 right after a label was answered loses nothing: the restarted studio has
// every label and exports the same rows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../../src/studio/store/store.js';
import { tempDir } from '../helpers/assets.js';
import { familyModel } from '../helpers/cli.js';
import { DEMO_MODEL, startStudioCli, writePrompts } from './helpers.js';

test(
  'tsdpo studio: 127.0.0.1, 401 without the token, kill -9 loses no answered label',
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    const args = [
      '--model',
      DEMO_MODEL,
      '--prompts',
      writePrompts(dir),
      '--db',
      join(dir, 's.db'),
      '--max_new_tokens',
      '8',
    ];
    let studio = await startStudioCli(args, dir);
    try {
      assert.match(studio.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
      for (const path of [
        '/',
        '/app.js',
        '/api/state',
        '/api/next?labeler=x',
        '/api/export?format=jsonl',
        '/api/events',
      ]) {
        const r = await fetch(`${studio.base}${path}`);
        assert.equal(r.status, 401, `${path} without the token`);
        const wrong = await fetch(`${studio.base}${path}`, {
          headers: { Authorization: `Bearer ${studio.token.slice(1)}x` },
        });
        assert.equal(wrong.status, 401, `${path} with a wrong token`);
        await r.body?.cancel();
        await wrong.body?.cancel();
      }
      assert.equal((await fetch(`${studio.base}/api/train`, { method: 'POST', body: '{}' })).status, 401);
      const page = await fetch(studio.url);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/);

      // The page's import: JSON lines, a bad line named.
      const bad = await studio.call('/api/import?name=up.jsonl', {
        method: 'POST',
        body: '{"prompt":"p","chosen":"c","rejected":"r"}\n{"prompt":"p"}\n',
      });
      assert.equal(bad.status, 400);
      assert.match(
        ((await bad.json()) as { error: string }).error,
        /^import: up\.jsonl line 2: missing field 'chosen'$/,
      );
      assert.equal((await studio.call('/api/export?format=csv')).status, 400);

      // Label, and kill -9 the moment the last answer arrived.
      const labeled: number[] = [];
      for (let i = 0; i < 6; i++) {
        const pair = (await (await studio.call('/api/next?labeler=ann')).json()) as { id: number };
        const r = await studio.call('/api/label', {
          method: 'POST',
          body: JSON.stringify({ pairId: pair.id, labeler: 'ann', verdict: i % 2 ? 'a' : 'b' }),
        });
        assert.equal(r.status, 200, await r.text());
        labeled.push(pair.id);
      }
      await studio.stop('SIGKILL');
      const s = new Store(join(dir, 's.db'));
      const saved = s.db
        .prepare("SELECT pair_id FROM labels WHERE labeler = 'ann' ORDER BY id")
        .all()
        .map((r) => (r as { pair_id: number }).pair_id);
      s.close();
      assert.deepEqual(saved, labeled, 'every answered label is in the database after kill -9');

      studio = await startStudioCli(args, dir);
      const state = (await (await studio.call('/api/state?labeler=ann')).json()) as { progress: { mine: number } };
      assert.equal(state.progress.mine, 6);
      const exported = (await (await studio.call('/api/export?format=jsonl')).text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(exported.length, 6);
    } finally {
      await studio.stop('SIGKILL');
    }
  },
);

test(
  'tsdpo studio --reference: one completion from each model, the order shown stored with the side of each',
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    const db = join(dir, 's.db');
    const studio = await startStudioCli(
      [
        '--model',
        DEMO_MODEL,
        '--reference',
        DEMO_MODEL,
        '--prompts',
        writePrompts(dir),
        '--db',
        db,
        '--max_new_tokens',
        '4',
      ],
      dir,
    );
    try {
      const shown: { a: string; b: string }[] = [];
      for (let i = 0; i < 8; i++) {
        const pair = (await (await studio.call('/api/next?labeler=ann')).json()) as {
          id: number;
          a: string;
          b: string;
        };
        assert.deepEqual(
          Object.keys(pair).sort(),
          ['a', 'b', 'id', 'kind', 'prompt'],
          'the page is not told which model wrote which side',
        );
        shown.push(pair);
        await studio.call('/api/label', {
          method: 'POST',
          body: JSON.stringify({ pairId: pair.id, labeler: 'ann', verdict: 'skip' }),
        });
      }
      const s = new Store(db);
      const rows = s.db.prepare('SELECT a_text, b_text, a_source, b_source, swapped FROM pairs ORDER BY id').all() as {
        a_text: string;
        b_text: string;
        a_source: string;
        b_source: string;
        swapped: number;
      }[];
      s.close();
      assert.deepEqual(
        rows.map((r) => ({ a: r.a_text, b: r.b_text })),
        shown.map((p) => ({ a: p.a, b: p.b })),
      );
      for (const r of rows)
        assert.deepEqual([r.a_source, r.b_source], r.swapped ? ['reference', 'policy'] : ['policy', 'reference']);
    } finally {
      await studio.stop('SIGKILL');
    }
  },
);

test(
  'tsdpo studio: a server run stopped after a checkpoint resumes from it and finishes',
  { timeout: 180_000 },
  async () => {
    const dir = tempDir();
    const db = join(dir, 's.db');
    const s = new Store(db);
    s.importRows(
      Array.from({ length: 8 }, (_, i) => ({ prompt: `Review ${i}: it was`, chosen: ' great.', rejected: ' awful.' })),
      'test',
      'test',
    );
    s.close();
    const studio = await startStudioCli(['--model', DEMO_MODEL, '--db', db], dir);
    try {
      const start = (await (
        await studio.call('/api/train', { method: 'POST', body: JSON.stringify({ max_steps: 12 }) })
      ).json()) as { name: string; output: string };
      const metrics = join(start.output, 'metrics.jsonl');
      const steps = (): number[] =>
        existsSync(metrics)
          ? readFileSync(metrics, 'utf8')
              .trim()
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l).step)
          : [];
      // Stop once the checkpoint of step 5 is written (save_steps 5).
      for (let i = 0; i < 600 && !existsSync(join(start.output, 'checkpoint-5', 'trainer_state.json')); i++)
        await new Promise((r) => setTimeout(r, 100));
      const stop = await studio.call('/api/train/stop', { method: 'POST', body: '{}' });
      assert.equal(stop.status, 200, await stop.text());
      const state = async () =>
        ((await (await studio.call('/api/state')).json()) as { run: { status: string } }).run.status;
      for (let i = 0; i < 100 && (await state()) !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(!existsSync(join(start.output, 'model.safetensors')), 'a stopped run has no final model');
      const resumed = await studio.call('/api/train', { method: 'POST', body: JSON.stringify({ resume: true }) });
      assert.equal(resumed.status, 200, await resumed.text());
      for (let i = 0; i < 1200 && (await state()) === 'running'; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await state(), 'done');
      assert.ok(existsSync(join(start.output, 'model.safetensors')));
      const logged = steps();
      assert.equal(logged[logged.length - 1], 12);
      assert.ok(logged.includes(6), `the resumed run went on after step 5: ${logged}`);
    } finally {
      await studio.stop('SIGKILL');
    }
  },
);

test(
  'tsdpo studio on a model with a chat template: prompts go in as a user turn, the export is conversational',
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    const model = familyModel('llama', join(dir, 'chat-model'));
    const studio = await startStudioCli(
      [
        '--model',
        model,
        '--prompts',
        writePrompts(dir, ['abc', 'de f']),
        '--db',
        join(dir, 's.db'),
        '--max_new_tokens',
        '4',
        '--hold_out',
        '0',
      ],
      dir,
    );
    try {
      const pair = (await (await studio.call('/api/next?labeler=ann')).json()) as { id: number; prompt: string };
      assert.equal(pair.prompt, 'abc');
      await studio.call('/api/label', {
        method: 'POST',
        body: JSON.stringify({ pairId: pair.id, labeler: 'ann', verdict: 'b' }),
      });
      const row = JSON.parse(await (await studio.call('/api/export?format=jsonl')).text());
      assert.deepEqual(row.prompt, [{ role: 'user', content: 'abc' }]);
      assert.equal(row.chosen[0].role, 'assistant');
      assert.equal(
        (await studio.call('/api/export?format=parquet')).status,
        400,
        'Parquet takes the standard format only',
      );
    } finally {
      await studio.stop('SIGKILL');
    }
  },
);
