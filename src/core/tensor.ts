// Tensors: a shape, a dtype and a backend Storage. Always contiguous and row-major; reshape and
// detach are views that share the storage. Memory is released deterministically: `dispose()`, or
// `tidy(fn)` which frees every tensor made inside fn except what it returns (or `keep`s).
import { getBackend, type Backend, type Storage } from './backend.js';
import { BYTES, makeArray, type DType, type TypedArray } from './dtype.js';
import { fmt, sizeOf, type Shape } from './shape.js';
import type { Node } from './autograd.js';

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  private _storage: Storage | null;
  /** Whether gradients flow to this tensor (parameters, and results computed from them). */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after `backward` (kept out of scopes; dispose or zero it). */
  grad: Tensor | null = null;
  /** How this tensor was computed, for backward (null for leaves and under noGrad). */
  node: Node | null = null;
  /** Optional name (parameters carry their Hugging Face name), used in error messages. */
  name: string | undefined;

  constructor(storage: Storage, shape: Shape) {
    const size = sizeOf(shape);
    if (size !== storage.size)
      throw new Error(`Tensor: shape ${fmt(shape)} needs ${size} elements, storage has ${storage.size}`);
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = storage.dtype;
    this.size = size;
    storage.refs++;
    track(this);
  }

  get backend(): Backend {
    return this.storage.backend;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The storage; throws if the tensor was disposed. */
  get storage(): Storage {
    if (this._storage === null) throw new Error(`tensor ${this.describe()} was used after dispose()`);
    return this._storage;
  }

  get disposed(): boolean {
    return this._storage === null;
  }

  describe(): string {
    return `${this.name ?? `#${this.id}`} ${this.dtype}${fmt(this.shape)}`;
  }

  /** Releases the memory (idempotent). The gradient, if any, is released too. */
  dispose(): void {
    const s = this._storage;
    if (s === null) return;
    this._storage = null;
    this.node = null;
    if (--s.refs === 0) s.backend.free(s);
    if (this.grad !== null) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Copies the values to the host. */
  async toArray(): Promise<TypedArray> {
    return this.backend.read(this.storage);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): tensor ${this.describe()} has ${this.size} elements`);
    return (await this.toArray())[0];
  }

  /** Nested arrays, for printing and tests. */
  async toNested(): Promise<unknown> {
    const data = Array.from(await this.toArray());
    const build = (dim: number, offset: number): unknown => {
      if (dim === this.shape.length) return data[offset];
      const step = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, offset + i * step));
    };
    return build(0, 0);
  }
}

// ---- Scopes -------------------------------------------------------------------------------

const scopes: Set<Tensor>[] = [];

function track(t: Tensor): void {
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
}

/** Removes tensors from every open scope, so they outlive `tidy` (parameters, optimizer state). */
export function keep<T extends Tensor | null | undefined>(t: T): T {
  if (t) for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) out.add(value);
  else if (depth < 4 && Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (
    depth < 4 &&
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

function closeScope(scope: Set<Tensor>, result: unknown): void {
  const keepSet = new Set<Tensor>();
  collect(result, keepSet);
  for (const t of scope) {
    if (keepSet.has(t)) continue;
    t.dispose();
  }
  // Returned tensors belong to the enclosing scope now.
  for (const t of keepSet) if (!t.disposed) track(t);
}

/**
 * Runs fn and disposes every tensor it created, except those in its result (a tensor, or arrays
 * / plain objects of tensors) and those passed to `keep`. Synchronous functions only.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    closeScope(scope, undefined);
    throw e;
  }
  if (result instanceof Promise) throw new Error('tidy(): use tidyAsync for async functions');
  scopes.pop();
  closeScope(scope, result);
  return result;
}

/** tidy for async functions; do not interleave two of them (scopes form one stack). */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    scopes.splice(scopes.indexOf(scope), 1);
    closeScope(scope, undefined);
    throw e;
  }
  scopes.splice(scopes.indexOf(scope), 1);
  closeScope(scope, result);
  return result;
}

// ---- Creation -----------------------------------------------------------------------------

/** A tensor with uninitialised contents. */
export function empty(shape: Shape, dtype: DType = 'f32', backend: Backend = getBackend()): Tensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`empty: invalid shape ${fmt(shape)}`);
  }
  if (!backend.supports(dtype)) throw new Error(`backend ${backend.name} does not support ${dtype}`);
  return new Tensor(backend.alloc(dtype, sizeOf(shape), shape), shape);
}

export function full(shape: Shape, value: number, dtype: DType = 'f32', backend: Backend = getBackend()): Tensor {
  const t = empty(shape, dtype, backend);
  backend.kernels.fill({ out: t.storage, value });
  return t;
}

export function zeros(shape: Shape, dtype: DType = 'f32', backend?: Backend): Tensor {
  return full(shape, 0, dtype, backend);
}

export function ones(shape: Shape, dtype: DType = 'f32', backend?: Backend): Tensor {
  return full(shape, 1, dtype, backend);
}

/** A tensor holding `data` (flat, row-major). The shape defaults to [data.length]. */
export function tensor(data: ArrayLike<number>, shape?: Shape, dtype?: DType, backend: Backend = getBackend()): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Float64Array ? 'f64' : 'f32');
  const sh = shape ?? [data.length];
  if (sizeOf(sh) !== data.length) throw new Error(`tensor: ${data.length} values do not fill shape ${fmt(sh)}`);
  const t = empty(sh, dt, backend);
  backend.write(t.storage, data);
  return t;
}

export function scalar(value: number, dtype: DType = 'f32', backend?: Backend): Tensor {
  return tensor([value], [], dtype, backend);
}

/** A view with another shape of the same size (no copy, no autograd; see ops reshape). */
export function viewOf(x: Tensor, shape: Shape): Tensor {
  return new Tensor(x.storage, shape);
}

/**
 * A view of a freshly made tensor that takes over its storage (the original is disposed), so the
 * storage keeps a single owner: gradients made this way need no defensive copy.
 */
export function ownedView(t: Tensor, shape: Shape): Tensor {
  const v = new Tensor(t.storage, shape);
  t.dispose();
  return v;
}

/** Bytes of one element. */
export function elementBytes(t: Tensor): number {
  return BYTES[t.dtype];
}

export { makeArray };
