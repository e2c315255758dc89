// The studio's HTTP server (node:http): the page and its files, and a JSON API over the store, the
// sampler and training runs. Every request must carry the access token (the ?token= of the printed
// URL, the cookie the page then holds, or `Authorization: Bearer`), else 401.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  loadSampler,
  rewardJudge,
  rewardWinRate,
  saveTabRun,
  startTraining,
  tabData,
  type Sampler,
  type TrainHandle,
  type TrainSettings,
} from '../engine.js';
import { encodeRows, exportFormat, preferenceRowsOfText, writeRows } from '../store/export.js';
import { Store, VERDICTS, type Pair, type PairKind, type Verdict } from '../store/store.js';

export interface StudioOptions {
  model: string;
  reference?: string;
  db: string;
  prompts?: string;
  port: number;
  host: string;
  /** Where training runs go (one folder per run). */
  runs: string;
  device: 'cpu' | 'webgpu' | 'auto';
  maxNewTokens: number;
  /** Every n-th prompt of the file is held out for the comparison (0: none). */
  holdOutEvery: number;
  /** Fixed token (tests); default: 24 random bytes. */
  token?: string;
  guidelines?: string;
  log?: (line: string) => void;
}

const WEB = fileURLToPath(new URL('../../../../src/studio/web/', import.meta.url));
const UPLOT = dirname(createRequire(import.meta.url).resolve('uplot'));
const FILES: Record<string, [string, string]> = {
  '/app.js': [join(WEB, 'app.js'), 'text/javascript'],
  '/app.css': [join(WEB, 'app.css'), 'text/css'],
  '/tab-train.js': [join(WEB, 'tab-train.js'), 'text/javascript'],
  '/tab-worker.js': [join(WEB, 'tab-worker.js'), 'text/javascript'],
  '/uplot.js': [join(UPLOT, 'uPlot.iife.min.js'), 'text/javascript'],
  '/uplot.css': [join(UPLOT, 'uPlot.min.css'), 'text/css'],
};
const COOKIE = 'tsdpo_studio';
/** The compiled engine, served to the tab's worker as ES modules (with its WebAssembly kernels). */
const DIST = fileURLToPath(new URL('../../../', import.meta.url));
const MODEL_FILES = new Set(['config.json', 'model.safetensors']);

export const DEFAULT_GUIDELINES = [
  'Read the prompt, then both completions.',
  '1: A is better. 2: B is better. T: as good as each other. B: both bad.',
  'E: edit a completion into a good one (the edit becomes chosen, the original rejected).',
  'S: skip (unsure). U: undo the last label.',
  'Judge what the completion says, not its length.',
].join('\n');

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface RunState {
  name: string;
  output: string;
  status: 'running' | 'stopping' | 'stopped' | 'done' | 'failed';
  metrics: Record<string, number>[];
  settings: TrainSettings;
}

export interface Studio {
  server: Server;
  url: string;
  token: string;
  store: Store;
  close(): Promise<void>;
}

/** Opens the store, loads the prompts, starts listening; the URL carries the token. */
export async function startStudio(o: StudioOptions): Promise<Studio> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const store = new Store(o.db);
  if (o.prompts) {
    const texts = readFileSync(o.prompts, 'utf8')
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .filter((l) => l.trim() !== '');
    const added = store.addPrompts(texts, o.prompts);
    const held = store.holdOut(o.holdOutEvery);
    log(
      `prompts: ${added} new from ${o.prompts} (${store.prompts().length} in the ` +
        `database, ${held || store.prompts(true).length} held out for the comparison)`,
    );
  }
  const token = o.token ?? randomBytes(24).toString('base64url');
  const tokenBytes = Buffer.from(token);
  let sampler: Promise<Sampler> | null = null;
  const getSampler = (): Promise<Sampler> =>
    (sampler ??= loadSampler({
      model: o.model,
      reference: o.reference,
      device: o.device,
      maxNewTokens: o.maxNewTokens,
    }));
  const comparers = new Map<string, Promise<Sampler>>();
  // One generation at a time: the engine runs one program.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const next = queue.then(f, f);
    queue = next.catch(() => undefined);
    return next;
  };

  let run: RunState | null = null;
  let handle: TrainHandle | null = null;
  const listeners = new Set<ServerResponse>();
  const send = (event: string, data: unknown): void => {
    for (const res of listeners) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  const authorized = (req: IncomingMessage, url: URL): boolean => {
    const cookie = (req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim().split('='))
      .find(([k]) => k === COOKIE)?.[1];
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    return [url.searchParams.get('token'), cookie, bearer].some((t) => {
      if (!t) return false;
      const b = Buffer.from(t);
      return b.length === tokenBytes.length && timingSafeEqual(b, tokenBytes);
    });
  };

  const chat = async (): Promise<boolean> => (await getSampler()).chat;

  /** A pair of `kind` for this labeler: one waiting for them, else a new one sampled now. */
  const nextPair = async (labeler: string, kind: PairKind): Promise<Pair | null> => {
    const runName = kind === 'compare' ? (finishedRun()?.name ?? null) : null;
    if (kind === 'compare' && !runName)
      throw new HttpError(409, 'no finished training run to compare yet: train one first');
    const waiting = store.pendingPair(labeler, kind, runName);
    if (waiting) return waiting;
    const prompt = store.nextPrompt(kind, runName);
    if (!prompt) return null;
    const s = kind === 'compare' ? await comparer(runName!) : await getSampler();
    const [x, y] = await serial(() => s.pair(prompt.text));
    const swapped = Math.random() < 0.5; // sides at random; the order shown is stored
    const [a, b] = swapped ? [y, x] : [x, y];
    return store.addPair({
      prompt_id: prompt.id,
      kind,
      a_text: a.text,
      b_text: b.text,
      a_source: a.source,
      b_source: b.source,
      swapped: swapped ? 1 : 0,
      run: runName,
    });
  };

  const comparer = (name: string): Promise<Sampler> => {
    if (!comparers.has(name))
      comparers.set(
        name,
        loadSampler({ model: join(o.runs, name), reference: o.model, device: o.device, maxNewTokens: o.maxNewTokens }),
      );
    return comparers.get(name)!;
  };

  const finishedRun = (): { name: string } | null => {
    if (run?.status === 'done') return run;
    if (!existsSync(o.runs)) return null;
    const done = readdirSync(o.runs)
      .filter((d) => existsSync(join(o.runs, d, 'model.safetensors')))
      .sort();
    return done.length ? { name: done[done.length - 1] } : null;
  };

  const startRun = async (body: Record<string, unknown>): Promise<RunState> => {
    if (handle) throw new HttpError(409, `run ${run?.name} is still running: stop it first`);
    const resume = body.resume === true;
    if (resume && (!run || run.status !== 'stopped')) throw new HttpError(409, 'no stopped run to resume');
    let settings: TrainSettings;
    if (resume) {
      settings = { ...run!.settings, resume: true };
    } else {
      const rows = store.exportRows();
      if (rows.length === 0)
        throw new HttpError(409, 'no labeled pairs yet: label some first (ties, both-bad and skips do not train)');
      mkdirSync(o.runs, { recursive: true });
      const name = `run-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}`;
      const data = join(o.runs, `${name}.pairs.jsonl`);
      writeRows(data, rows, await chat());
      const num = (k: string, d: number): number => {
        const v = body[k] === undefined ? d : Number(body[k]);
        if (!Number.isFinite(v) || v <= 0)
          throw new HttpError(400, `train: ${k} must be a positive number, got ${JSON.stringify(body[k])}`);
        return v;
      };
      settings = {
        model: o.model,
        data,
        output: join(o.runs, name),
        max_steps: Math.round(num('max_steps', 20)),
        beta: num('beta', 0.1),
        learning_rate: num('learning_rate', 1e-4),
        per_device_train_batch_size: Math.min(8, rows.length),
        save_steps: 5,
        device: o.device,
        resume: false,
      };
      run = { name, output: settings.output, status: 'running', metrics: [], settings };
    }
    const current = run!;
    current.status = 'running';
    send('status', { run: current.name, status: current.status });
    handle = startTraining(settings, {
      onMetrics: (m) => {
        current.metrics.push(m);
        send('metrics', m);
      },
      onLog: (line) => send('log', { line }),
      onExit: (code) => {
        handle = null;
        current.status = current.status === 'stopping' ? 'stopped' : code === 0 ? 'done' : 'failed';
        send('status', { run: current.name, status: current.status, code });
      },
    });
    return current;
  };

  const api = async (req: IncomingMessage, url: URL, res: ServerResponse): Promise<unknown> => {
    const labeler = (url.searchParams.get('labeler') ?? '').trim();
    const path = url.pathname;
    const raw = req.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
    const body = path === '/api/tab/save' ? '' : raw.toString('utf8');
    const json = (): Record<string, unknown> => {
      try {
        return body ? JSON.parse(body) : {};
      } catch {
        throw new HttpError(400, `${path}: the body is not JSON`);
      }
    };
    const kindOf = (v: unknown): PairKind => (v === 'compare' ? 'compare' : 'collect');
    if (req.method === 'GET' && path === '/api/state') {
      return {
        progress: store.progress(labeler),
        agreement: store.agreement(),
        model: o.model,
        reference: o.reference ?? null,
        guidelines: o.guidelines ?? DEFAULT_GUIDELINES,
        heldOut: store.prompts(true).length,
        run: run && { name: run.name, status: run.status, metrics: run.metrics },
        compareRun: finishedRun()?.name ?? null,
      };
    }
    if (req.method === 'GET' && path === '/api/next') {
      if (!labeler) throw new HttpError(400, '/api/next: ?labeler= (a name) is required');
      const pair = await nextPair(labeler, kindOf(url.searchParams.get('kind')));
      // Blind: the page never learns which model wrote which side.
      return pair && { id: pair.id, prompt: pair.prompt, a: pair.a_text, b: pair.b_text, kind: pair.kind };
    }
    if (req.method === 'POST' && path === '/api/label') {
      const b = json();
      if (!VERDICTS.includes(b.verdict as Verdict))
        throw new HttpError(400, `label: verdict must be one of ${VERDICTS.join(', ')}`);
      try {
        const id = store.label({
          pairId: Number(b.pairId),
          labeler: String(b.labeler ?? '').trim(),
          verdict: b.verdict as Verdict,
          editedSide: b.editedSide as 'a' | 'b' | undefined,
          editedText: b.editedText as string | undefined,
        });
        return { id };
      } catch (e) {
        throw new HttpError(400, (e as Error).message);
      }
    }
    if (req.method === 'POST' && path === '/api/undo') {
      const b = json();
      const pair = store.undo(String(b.labeler ?? ''), kindOf(b.kind));
      return { pair: pair && { id: pair.id, prompt: pair.prompt, a: pair.a_text, b: pair.b_text, kind: pair.kind } };
    }
    if (req.method === 'POST' && path === '/api/prompts') {
      const texts = String(json().text ?? '')
        .split('\n')
        .filter((l) => l.trim() !== '');
      return { added: store.addPrompts(texts, 'typed') };
    }
    if (req.method === 'GET' && path === '/api/export') {
      const asked = url.searchParams.get('format') ?? 'jsonl';
      if (asked !== 'jsonl' && asked !== 'parquet')
        throw new HttpError(400, `/api/export: format must be jsonl or parquet, got '${asked}'`);
      const format = exportFormat(`x.${asked}`);
      const rows = store.exportRows({
        ties: url.searchParams.get('ties') === '1',
        bothBad: url.searchParams.get('both_bad') === '1',
      });
      let bytes: Uint8Array;
      try {
        bytes = encodeRows(rows, format, await chat());
      } catch (e) {
        throw new HttpError(400, (e as Error).message);
      }
      res.writeHead(200, {
        'Content-Type': format === 'jsonl' ? 'application/jsonl' : 'application/vnd.apache.parquet',
        'Content-Disposition': `attachment; filename="preferences.${format}"`,
      });
      res.end(bytes);
      return undefined;
    }
    if (req.method === 'POST' && path === '/api/import') {
      const name = url.searchParams.get('name') ?? 'upload';
      let rows: { prompt: string; chosen: string; rejected: string }[];
      try {
        rows = preferenceRowsOfText(body, name);
      } catch (e) {
        throw new HttpError(400, `import: ${(e as Error).message}`);
      }
      return { imported: store.importRows(rows, `import:${name}`, `import:${name}`) };
    }
    if (req.method === 'GET' && path === '/api/tab/data') {
      try {
        return await tabData(o.model, store.exportRows());
      } catch (e) {
        throw new HttpError(409, (e as Error).message);
      }
    }
    if (req.method === 'POST' && path === '/api/tab/save') {
      const name = url.searchParams.get('name') ?? '';
      if (!/^run-[\w-]+-tab$/.test(name)) throw new HttpError(400, `tab run name '${name}' is not run-...-tab`);
      const part = url.searchParams.get('part');
      if (part !== 'model' && part !== 'metrics')
        throw new HttpError(400, '/api/tab/save: part must be model or metrics');
      try {
        saveTabRun(o.model, join(o.runs, name), part, raw);
      } catch (e) {
        throw new HttpError(400, (e as Error).message);
      }
      return { saved: join(o.runs, name) };
    }
    if (req.method === 'POST' && path === '/api/train') return pick(await startRun(json()));
    if (req.method === 'POST' && path === '/api/train/stop') {
      if (!run || run.status !== 'running' || !handle) throw new HttpError(409, 'no run is running');
      run.status = 'stopping'; // 'stopped' once the process has exited
      handle.stop();
      return pick(run);
    }
    if (req.method === 'GET' && path === '/api/compare') {
      const name = finishedRun()?.name;
      return name ? { run: name, ...store.compareResult(name) } : { run: null };
    }
    if (req.method === 'POST' && path === '/api/compare/reward') {
      const name = finishedRun()?.name;
      if (!name) throw new HttpError(409, 'no finished training run to compare yet');
      const b = json();
      const judge = await rewardJudge(String(b.reward ?? 'sentiment'));
      const s = await comparer(name);
      const prompts = store.prompts(true).slice(0, Number(b.prompts ?? 32));
      if (prompts.length === 0) throw new HttpError(409, 'no held-out prompts (start the studio with --hold_out N)');
      const r = await rewardWinRate(
        s,
        judge,
        prompts.map((p) => p.text),
        Math.max(1, Number(b.samples ?? 4)),
        serial,
      );
      return { run: name, reward: String(b.reward ?? 'sentiment'), ...r };
    }
    throw new HttpError(404, `${req.method} ${path}: no such route`);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://studio');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    // cross-origin isolation: the tab's engine needs SharedArrayBuffer
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    if (!authorized(req, url)) {
      res.writeHead(401, { 'Content-Type': 'text/plain' });
      res.end('401: this studio needs its access token (open the URL it printed, with ?token=...)\n');
      return;
    }
    if (url.searchParams.has('token')) {
      res.setHeader('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
    }
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:",
      });
      res.end(readFileSync(join(WEB, 'index.html')));
      return;
    }
    if (req.method === 'GET' && url.pathname.startsWith('/api/tab/model/') && MODEL_FILES.has(url.pathname.slice(15))) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.end(readFileSync(join(o.model, url.pathname.slice(15))));
      return;
    }
    if (
      req.method === 'GET' &&
      url.pathname.startsWith('/dist/src/') &&
      /^[\w/.-]+\.(js|wasm)$/.test(url.pathname) &&
      !url.pathname.includes('..')
    ) {
      const f = join(DIST, url.pathname.slice('/dist/'.length));
      if (existsSync(f)) {
        res.writeHead(200, {
          'Content-Type': f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript; charset=utf-8',
        });
        res.end(readFileSync(f));
        return;
      }
    }
    const file = FILES[url.pathname];
    if (req.method === 'GET' && file) {
      res.writeHead(200, { 'Content-Type': `${file[1]}; charset=utf-8` });
      res.end(readFileSync(file[0]));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/events') {
      res.writeHead(200, {
        'Content-Type': 'text/event-stream',
        'Cache-Control': 'no-cache',
        Connection: 'keep-alive',
      });
      res.write(': connected\n\n');
      listeners.add(res);
      req.on('close', () => listeners.delete(res));
      return;
    }
    api(req, url, res).then(
      (out) => {
        if (out === undefined) return;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(out));
      },
      (e: Error) => {
        const status = e instanceof HttpError ? e.status : 500;
        if (status === 500) log(`studio: ${e.stack ?? e.message}`);
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: e.message }));
      },
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port, o.host, () => ok());
  });
  const port = (server.address() as { port: number }).port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  const url = `http://${host}:${port}/?token=${token}`;
  return {
    server,
    url,
    token,
    store,
    close: async () => {
      handle?.stop();
      for (const r of listeners) r.end();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      store.close();
    },
  };
}

function pick(r: RunState): Record<string, unknown> {
  return { name: r.name, status: r.status, output: r.output };
}

function readBody(req: IncomingMessage, limit = 256 << 20): Promise<Buffer> {
  return new Promise((ok, fail) => {
    let size = 0;
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) {
        fail(new HttpError(413, `request body over ${limit} bytes`));
        req.destroy();
        return;
      }
      parts.push(d);
    });
    req.on('end', () => ok(Buffer.concat(parts)));
    req.on('error', fail);
  });
}
