// Writing files and folders so that a crash or an exception never leaves a half-written one under
// the final name: write a temporary in the same folder, fsync it, then rename it into place.
import * as fs from 'node:fs';
import * as path from 'node:path';

let serial = 0;

/** Writes all of `bytes` at the fd's position (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  const CHUNK = 1 << 30; // one write is limited to 2 GiB
  for (let off = 0; off < bytes.byteLength;) {
    off += fs.writeSync(fd, bytes, off, Math.min(CHUNK, bytes.byteLength - off));
  }
}

/** fsyncs a folder so that renames in it survive a crash (a no-op where the OS refuses, as on Windows). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!['EISDIR', 'EPERM', 'EINVAL', 'EBADF', 'EACCES'].includes(code ?? '')) throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Creates `target` atomically: `write` fills a temporary file (given its fd) in the same folder,
 *  which is fsynced and renamed over `target`. If `write` throws, the temporary is removed and
 *  `target` keeps its previous content (or stays absent). */
export function writeFileAtomicWith(target: string, write: (fd: number) => void): void {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${serial++}`);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    try {
      write(fd);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(target));
}

/** Writes `data` (text as UTF-8) to `target` atomically. */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  writeFileAtomicWith(target, (fd) => writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
}

/** Writes JSON as transformers does (2-space indent, trailing newline), atomically. */
export function writeJsonAtomic(target: string, value: unknown): void {
  writeFileAtomic(target, JSON.stringify(value, null, 2) + '\n');
}

/** Replaces the folder `dir` as a whole: `fill` writes the new content into `<dir>.tmp-<pid>`,
 *  which then takes the place of `dir`; the old folder is removed after. If `fill` throws, `dir`
 *  is untouched. rename() cannot replace a non-empty folder, so the old one is first moved to
 *  `<dir>.old-<pid>`: a crash between the two renames leaves the previous version there. */
export function replaceDirAtomic(dir: string, fill: (tmpDir: string) => void): void {
  const abs = path.resolve(dir);
  const tmp = `${abs}.tmp-${process.pid}`,
    old = `${abs}.old-${process.pid}`;
  const existing = fs.lstatSync(abs, { throwIfNoEntry: false });
  if (existing && !existing.isDirectory()) {
    throw new Error(`replaceDirAtomic: ${abs} exists and is not a folder; remove it or pick another path`);
  }
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.rmSync(tmp, { recursive: true, force: true }); // left by an earlier failed attempt of this process
  fs.mkdirSync(tmp);
  try {
    fill(tmp);
    fsyncDir(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (existing) {
    fs.rmSync(old, { recursive: true, force: true });
    fs.renameSync(abs, old);
  }
  try {
    fs.renameSync(tmp, abs);
  } catch (e) {
    if (existing) fs.renameSync(old, abs);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncDir(path.dirname(abs));
  if (existing) fs.rmSync(old, { recursive: true, force: true });
}
