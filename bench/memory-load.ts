// The load-only mode of bench/memory.ts (`--load-only`): loads the policy and the reference of a
// full-fine-tuning DPO run as `tsdpo dpo` does (CPU backend, native addon on: engine, tokenizer,
// policy in float32 with gradients on, the reference in float32, or bf16 with --frozen) and prints
// one JSON line: RSS, peak RSS, the backend's live bytes and process.memoryUsage() after each
// stage, then after a full garbage collection and after returning freed heap memory to the OS, so
// that what RSS holds beyond the live tensors can be split by source.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { initEngine } from '../src/engine.js';
import { loadModel, trainAll } from '../src/models/load.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { trimHeap } from './trim.js';
import type { CpuBackend } from '../src/backend/cpu/backend.js';

const GIB = 2 ** 30;
const gib = (bytes: number): number => Math.round((bytes / GIB) * 1000) / 1000;

/** VmRSS and VmHWM (peak RSS) of this process, in bytes (Linux). */
function rss(): { rss: number; peak: number } {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/**
 * Resident bytes of the WebAssembly memory and of everything else. The WebAssembly memory is the
 * largest run of adjacent anonymous mappings (V8 reserves its 4 GiB and more at once, and makes the
 * grown part writable, which splits the reservation into mappings of their own).
 */
function mappings(): { wasm: number; other: number } {
  const runs: { end: number; size: number; rss: number }[] = [];
  let all = 0,
    cur: { end: number; size: number; rss: number } | null = null;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const start = parseInt(m[1], 16),
        end = parseInt(m[2], 16);
      if (m[3] === '' && cur !== null && cur.end === start) {
        cur.end = end;
        cur.size += end - start;
      } else runs.push((cur = { end, size: end - start, rss: 0 }));
      if (m[3] !== '') cur = null;
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (!r) continue;
    all += Number(r[1]) * 1024;
    if (cur !== null) cur.rss += Number(r[1]) * 1024;
  }
  const wasm = runs.filter((r) => r.size >= 4 * GIB).sort((a, b) => b.size - a.size)[0]?.rss ?? 0;
  return { wasm, other: all - wasm };
}

export async function loadOnly(model: string, frozen: boolean): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const stages: Record<string, Record<string, number>> = {};
  let backend: CpuBackend | null = null;
  const mark = (name: string): void => {
    const m = process.memoryUsage(),
      r = rss(),
      maps = mappings();
    stages[name] = {
      rss_gib: gib(r.rss),
      peak_rss_gib: gib(r.peak),
      wasm_rss_gib: gib(maps.wasm),
      other_rss_gib: gib(maps.other),
      live_gib: gib(backend?.liveBytes() ?? 0),
      spilled_gib: gib(backend?.spill.spilledBytes ?? 0),
      array_buffers_gib: gib(m.arrayBuffers),
      external_gib: gib(m.external),
      heap_used_gib: gib(m.heapUsed),
    };
  };
  mark('start');
  backend = (await initEngine({ device: 'cpu' })) as CpuBackend;
  mark('engine');
  const tok = loadTokenizer(model);
  mark('tokenizer');
  const t0 = performance.now();
  const policy = loadModel(model, { frozenDtype: 'f32' });
  trainAll(policy);
  mark('policy');
  const reference = loadModel(model, { frozenDtype: frozen ? 'bf16' : 'f32' });
  const seconds = (performance.now() - t0) / 1000;
  mark('reference');
  gc();
  mark('gc');
  const trimmed = trimHeap();
  mark('trim');
  const end = stages.reference;
  console.log(
    JSON.stringify({
      mode: 'load-only',
      model,
      reference: frozen ? 'bf16' : 'f32',
      native: backend.useNative,
      load_seconds: Math.round(seconds * 10) / 10,
      rss_after_load_gib: end.rss_gib,
      peak_rss_gib: stages.trim.peak_rss_gib,
      live_gib: end.live_gib,
      excess_gib: gib((end.rss_gib - end.live_gib) * GIB),
      trim: trimmed,
      stages,
    }),
  );
  // Keep the models and the tokenizer alive to the end, as a run does.
  void [tok, policy, reference];
}
