// Progress of a long phase: a bar with ETA on a terminal (cli-progress), plain lines otherwise
// (CI logs, pipes), so every long phase shows that it is moving.
import cliProgress from 'cli-progress';

export interface Progress {
  /** Advances to `done` of `total` with a short status text. */
  update(done: number, status?: string): void;
  /** A line that must stay visible (printed above the bar on a terminal). */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Plain mode prints at most one line per this many ms (default 10 s). */
  plainEveryMs?: number;
  stream?: NodeJS.WriteStream;
  /** No output at all (library use, --quiet). */
  silent?: boolean;
}

export function progress(label: string, total: number, opts: ProgressOptions = {}): Progress {
  // before touching process: browsers have none
  if (opts.silent) return { update: () => {}, log: () => {}, stop: () => {} };
  const stream = opts.stream ?? process.stderr;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} | {percentage}% | ETA {eta_formatted} | {status}`,
        stream,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { status: '' });
    return {
      update: (done, status = '') => bar.update(done, { status }),
      log: (line) => {
        stream.write(`\r\x1b[2K${line}\n`);
        bar.render();
      },
      stop: () => bar.stop(),
    };
  }
  const every = opts.plainEveryMs ?? 10_000;
  const start = Date.now();
  let last = 0;
  return {
    update: (done, status = '') => {
      const now = Date.now();
      if (now - last < every && done < total) return;
      last = now;
      const rate = done / Math.max(1e-9, (now - start) / 1000);
      const eta = rate > 0 ? Math.round((total - done) / rate) : NaN;
      stream.write(
        `${label}: ${done}/${total} ` +
          `(${Math.round((100 * done) / Math.max(1, total))}%)` +
          `${Number.isFinite(eta) ? ` eta ${eta}s` : ''}${status ? ` ${status}` : ''}\n`,
      );
    },
    log: (line) => {
      stream.write(`${line}\n`);
    },
    stop: () => {},
  };
}
