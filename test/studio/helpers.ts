// The studio under test: the built command line (`tsdpo studio`) in a child process on a free port
// of 127.0.0.1, and requests to it with its token.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, DEMO_MODEL } from '../helpers/cli.js';

export { DEMO_MODEL };

export interface RunningStudio {
  child: ChildProcess;
  /** The printed URL, with ?token=. */
  url: string;
  base: string;
  token: string;
  /** fetch with the token (Authorization: Bearer). */
  call(path: string, init?: RequestInit): Promise<Response>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Prompts for the tests: plain ones, and ones with markup that the page must show as text. */
export const PROMPTS = [
  'The movie was',
  'I think that',
  '<img src=x onerror="window.pwned=1">This place is',
  'The food was',
  'Overall the service',
  '<script>window.pwned=2</script>My favourite',
  'The actors were',
  'We went there',
  'The ending',
  'It is a film',
];

export function writePrompts(dir: string, prompts = PROMPTS): string {
  const file = join(dir, 'prompts.txt');
  writeFileSync(file, `${prompts.join('\n')}\n`);
  return file;
}

/** Starts `tsdpo studio ...args --port 0` and waits for its URL. */
export async function startStudioCli(args: string[], cwd: string): Promise<RunningStudio> {
  const child = spawn(process.execPath, [BIN, 'studio', ...args, '--port', '0', '--device', 'cpu'], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  if (process.env.STUDIO_DEBUG) child.stderr!.pipe(process.stderr); // the server's own log, when a test fails
  child.stderr!.on('data', (d) => {
    err += String(d);
  });
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = /(http:\/\/\S+\?token=\S+)\n/.exec(out);
      if (m) ok(m[1]);
    });
    child.once('exit', (code) => fail(new Error(`tsdpo studio exited with ${code} before printing its URL:\n${err}`)));
    setTimeout(() => fail(new Error(`tsdpo studio printed no URL in 60 s:\n${err}`)), 60_000).unref();
  });
  const base = url.slice(0, url.indexOf('/?token='));
  const token = url.slice(url.indexOf('?token=') + 7);
  return {
    child,
    url,
    base,
    token,
    call: (path, init = {}) =>
      fetch(`${base}${path}`, { ...init, headers: { Authorization: `Bearer ${token}`, ...(init.headers ?? {}) } }),
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}
