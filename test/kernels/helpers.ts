// Shared helpers of the kernel tests: seeded random data, copies in and out of the wasm heap,
// closeness checks with messages that say where and by how much, and the four runtimes every
// fast kernel is tested on (1 and 2 threads, relaxed and plain SIMD).
import assert from 'node:assert/strict';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import { mulberry32 } from '../../src/core/random.js';

/** Seeded uniforms in [0, 1). */
export const rng = mulberry32;

/** Standard normals (Box-Muller), times `scale`. */
export function randn(rand: () => number, n: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - rand(),
      v = rand();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo));
}

/** float32-rounded copy held in a Float64Array, so that the reference sees the wasm's inputs. */
export function f32(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(x));
}

/**
 * Asserts |actual - expected| <= atol + rtol |expected| elementwise (NaN matches NaN, infinities
 * must be equal); the message gives the worst element.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  let worst = -1,
    worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i],
      e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) {
        worst = i;
        worstExcess = Infinity;
        break;
      }
      continue;
    }
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` + `(rtol ${rtol}, atol ${atol})`,
    );
  }
}

export interface Rt {
  rt: KernelRuntime;
  label: string;
}

let runtimes: Promise<Rt[]> | null = null;

/** The four runtimes {1, 2 threads} x {relaxed, plain}, created once per test file. */
export function allRuntimes(): Promise<Rt[]> {
  runtimes ??= (async () => {
    const out: Rt[] = [];
    for (const relaxed of [true, false]) {
      for (const threads of [1, 2]) {
        const rt = await KernelRuntime.create({ threads, relaxed });
        out.push({ rt, label: `${threads} thread${threads > 1 ? 's' : ''}, ${rt.relaxed ? 'relaxed' : 'plain'} SIMD` });
      }
    }
    return out;
  })();
  return runtimes;
}

export async function closeRuntimes(): Promise<void> {
  if (runtimes) for (const { rt } of await runtimes) await rt.close();
  runtimes = null;
}

/**
 * Device memory for a test: `f32(data)`/`i32(data)` copy in and return the address, `zeros`
 * allocates, `read` copies out; `free()` releases everything. `pad` bytes in front of each
 * buffer (default 0) make addresses that are not 16-byte aligned.
 */
export class Mem {
  private ptrs: number[] = [];
  constructor(
    readonly rt: KernelRuntime,
    readonly pad = 0,
  ) {}

  alloc(bytes: number): number {
    const p = this.rt.malloc(bytes + this.pad + 16);
    this.ptrs.push(p);
    return p + this.pad;
  }

  f32(data: ArrayLike<number>): number {
    const p = this.alloc(data.length * 4);
    this.rt.heap().f32.set(Float32Array.from(data), p / 4);
    return p;
  }

  i32(data: ArrayLike<number>): number {
    const p = this.alloc(data.length * 4);
    this.rt.heap().i32.set(Int32Array.from(data), p / 4);
    return p;
  }

  /** n float32 zeros (or NaNs with fill = NaN, to catch elements a kernel forgets to write). */
  zeros(n: number, fill = 0): number {
    const p = this.alloc(n * 4);
    this.rt.heap().f32.fill(fill, p / 4, p / 4 + n);
    return p;
  }

  read(ptr: number, n: number): Float64Array {
    return Float64Array.from(this.rt.heap().f32.subarray(ptr / 4, ptr / 4 + n));
  }

  readI32(ptr: number, n: number): Int32Array {
    return this.rt.heap().i32.slice(ptr / 4, ptr / 4 + n);
  }

  readF64(ptr: number, n: number): Float64Array {
    return this.rt.heap().f64.slice(ptr / 8, ptr / 8 + n);
  }

  free(): void {
    for (const p of this.ptrs) this.rt.free(p);
    this.ptrs = [];
  }
}

/** Sizes every kernel is tried at: 1, 7, 33 and a larger one. */
export const SIZES = [1, 7, 33];
