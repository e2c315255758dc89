// WebGPU storages, and what the host knows about int32 ids in them. A kernel cannot throw on the
// GPU, so ids are checked on the host where they come from: a host write records the range of
// the values (and, for small arrays, a copy); copies between storages carry the range along; a
// kernel that computes ids on the device makes them unknown, and the id kernels then clamp or
// skip bad ids on the device (documented in docs/webgpu.md).
import type { Storage } from '../../core/backend.js';

/** Range of int32 values written from the host, -100 (ignore_index) counted apart. */
export interface IdInfo {
  /** Smallest and largest value other than -100 (+inf / -inf when there is none). */
  min: number;
  max: number;
  /** Whether some value is -100. */
  ignore: boolean;
  /** The exact values when the whole storage was written from the host at once (<= 4M elements). */
  host: Int32Array | null;
}

export interface GpuStorage extends Storage {
  /** The buffer (the first page of a split tensor). */
  readonly buffer: GPUBuffer;
  /** A tensor above the binding limit, split by rows into several buffers (paged.ts). */
  readonly pages?: Pages;
  /** What the host knows about its values (i32 only): undefined = nothing written yet, null = unknown. */
  ids?: IdInfo | null;
}

/** Page i holds elements [i * pageElems, min(size, (i + 1) * pageElems)), whole rows of rowElems. */
export interface Pages {
  readonly buffers: GPUBuffer[];
  readonly pageElems: number;
  readonly rowElems: number;
}

const IGNORE = -100;
const HOST_COPY_MAX = 1 << 22;

export function idInfoOf(data: ArrayLike<number>, whole: boolean): IdInfo {
  let min = Infinity,
    max = -Infinity,
    ignore = false;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v === IGNORE) ignore = true;
    else {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  const host = whole && data.length <= HOST_COPY_MAX ? Int32Array.from(data) : null;
  return { min, max, ignore, host };
}

/** The union of two ranges (no host copy). undefined counts as empty, null as unknown. */
export function mergeIds(a: IdInfo | null | undefined, b: IdInfo | null | undefined): IdInfo | null {
  if (a === null || b === null) return null;
  if (a === undefined && b === undefined) return { min: Infinity, max: -Infinity, ignore: false, host: null };
  if (a === undefined) return { ...b!, host: null };
  if (b === undefined) return { ...a, host: null };
  return { min: Math.min(a.min, b.min), max: Math.max(a.max, b.max), ignore: a.ignore || b.ignore, host: null };
}

/**
 * Throws, as the CPU kernels do, when ids known on the host fall outside [0, V) (-100 allowed
 * when `ignoreOk`). Unknown ids (computed on the device) pass: the kernel clamps them.
 */
export function checkIds(fn: string, s: Storage, N: number, V: number, ignoreOk: boolean, what: 'id' | 'target'): void {
  const info = (s as GpuStorage).ids;
  if (!info) return;
  const bad = (v: number): boolean => (v === IGNORE ? !ignoreOk : !(v >= 0 && v < V));
  if (!(info.ignore && !ignoreOk) && (info.max === -Infinity || (info.min >= 0 && info.max < V))) return;
  const hint = what === 'id' ? 'a tokenizer for another model?' : `use ${IGNORE} to ignore a position`;
  if (info.host) {
    for (let r = 0; r < Math.min(N, info.host.length); r++) {
      if (bad(info.host[r])) {
        throw new Error(
          `${fn}: ${what} ${info.host[r]} at ${what === 'id' ? 'position' : 'row'} ${r} is outside [0, ${V}) (vocab size V = ${V}; ${hint})`,
        );
      }
    }
    return;
  }
  const value = info.ignore && !ignoreOk ? IGNORE : info.min < 0 ? info.min : info.max;
  throw new Error(`${fn}: ${what}s include ${value}, outside [0, ${V}) (vocab size V = ${V}; ${hint})`);
}
