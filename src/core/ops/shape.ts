// Shape ops: reshape (a view), and permute / slice / concat / broadcastTo, which copy through
// the one strided-copy kernel. Their vjps are each other: permute <-> inverse permute,
// slice <-> pad into zeros, concat <-> slices, broadcastTo <-> sumTo.
import { record, recordMany } from '../autograd.js';
import { axisOf, broadcastStrides, collapseDims, fmt, sizeOf, stridesOf, type Shape } from '../shape.js';
import { viewOf, zeros, type Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';
import { alloc, kernelsOf } from './util.js';

/** Same values, new shape (one dim may be -1). No copy. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1);
  const free = shape.length - known.length;
  if (free > 1) throw new Error(`reshape: more than one -1 in ${fmt(shape)}`);
  const rest = sizeOf(known);
  const full = shape.map((d) => (d === -1 ? (rest === 0 ? 0 : x.size / rest) : d));
  if (sizeOf(full) !== x.size || full.some((d) => !Number.isInteger(d))) {
    throw new Error(`reshape: cannot view ${x.describe()} (${x.size} elements) as ${fmt(shape)}`);
  }
  const out = viewOf(x, full);
  return record(out, 'reshape', [x], (dy) => [viewOf(dy, x.shape)]);
}

export const flatten = (x: Tensor): Tensor => reshape(x, [x.size]);

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axisOf(axis, x.ndim + 1, 'unsqueeze');
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

export function squeeze(x: Tensor, axis: number): Tensor {
  const a = axisOf(axis, x.ndim, 'squeeze');
  if (x.shape[a] !== 1) throw new Error(`squeeze: dim ${axis} of ${x.describe()} is not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => i !== a),
  );
}

/** Copies `src` viewed through (shape, srcStrides, srcOffset) into dst at (dstStrides, dstOffset). */
function stridedCopy(
  src: Tensor,
  dst: Tensor,
  shape: Shape,
  srcStrides: number[],
  srcOffset: number,
  dstStrides: number[],
  dstOffset: number,
): void {
  if (sizeOf(shape) === 0) return;
  const c = collapseDims(shape, [srcStrides, dstStrides]);
  kernelsOf('copy', src, dst).copy({
    src: src.storage,
    dst: dst.storage,
    shape: c.shape,
    srcStrides: c.strides[0],
    dstStrides: c.strides[1],
    srcOffset,
    dstOffset,
  });
}

/** Reorders dims: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new Error(`permute: ${fmt(perm)} is not a permutation of the ${x.ndim} dims of ${x.describe()}`);
  }
  if (perm.every((p, i) => p === i)) return reshape(x, x.shape);
  const shape = perm.map((p) => x.shape[p]);
  const xs = stridesOf(x.shape);
  const out = alloc(shape, x.dtype, x);
  stridedCopy(
    x,
    out,
    shape,
    perm.map((p) => xs[p]),
    0,
    stridesOf(shape),
    0,
  );
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return record(out, 'permute', [x], (dy) => [permute(dy, inverse)]);
}

/** Swaps two dims. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const i = axisOf(a, x.ndim, 'transpose'),
    j = axisOf(b, x.ndim, 'transpose');
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** x[starts[0]:ends[0], starts[1]:ends[1], ...]; missing trailing dims are taken whole. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[]): Tensor {
  const lo = x.shape.map((d, i) => clampIndex(starts[i] ?? 0, d));
  const hi = x.shape.map((d, i) => clampIndex(ends[i] ?? d, d));
  const shape = lo.map((l, i) => Math.max(0, hi[i] - l));
  if (lo.length !== x.ndim || starts.length > x.ndim || ends.length > x.ndim) {
    throw new Error(`slice: ${starts.length} starts / ${ends.length} ends for ${x.describe()}`);
  }
  const xs = stridesOf(x.shape);
  const offset = lo.reduce((acc, l, i) => acc + l * xs[i], 0);
  const out = alloc(shape, x.dtype, x);
  stridedCopy(x, out, shape, xs, offset, stridesOf(shape), 0);
  return record(out, 'slice', [x], (dy) => {
    const dx = zeros(x.shape, dy.dtype, dy.backend);
    stridedCopy(dy, dx, shape, stridesOf(shape), 0, xs, offset);
    return [dx];
  });
}

/** Python-style index (negative counts from the end), clamped to [0, size]. */
function clampIndex(i: number, size: number): number {
  const j = i < 0 ? i + size : i;
  return Math.min(Math.max(j, 0), size);
}

/** Slice along one axis. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = axisOf(axis, x.ndim, 'narrow');
  const starts = x.shape.map((_, i) => (i === a ? start : 0));
  const ends = x.shape.map((d, i) => (i === a ? start + length : d));
  return slice(x, starts, ends);
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  const first = xs[0];
  const a = axisOf(axis, first.ndim, 'concat');
  for (const x of xs) {
    if (x.ndim !== first.ndim || x.dtype !== first.dtype || x.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new Error(`concat: ${x.describe()} does not match ${first.describe()} outside axis ${axis}`);
    }
  }
  const shape = first.shape.map((d, i) => (i === a ? xs.reduce((acc, x) => acc + x.shape[a], 0) : d));
  const out = alloc(shape, first.dtype, first);
  const os = stridesOf(shape);
  let at = 0;
  for (const x of xs) {
    stridedCopy(x, out, x.shape, stridesOf(x.shape), 0, os, at * os[a]);
    at += x.shape[a];
  }
  return record(out, 'concat', xs, (dy) => {
    let pos = 0;
    return xs.map((x) => {
      const g = x.requiresGrad ? narrow(dy, a, pos, x.shape[a]) : null;
      pos += x.shape[a];
      return g;
    });
  });
}

/**
 * Splits x along `axis` into pieces of the given sizes (one copy each); the backward writes all
 * pieces' gradients into one tensor (zeros only where a piece got none).
 */
export function split(x: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
  const a = axisOf(axis, x.ndim, 'split');
  if (sizes.reduce((p, q) => p + q, 0) !== x.shape[a]) {
    throw new Error(`split: sizes ${fmt(sizes)} do not add up to dim ${axis} of ${x.describe()}`);
  }
  const xs = stridesOf(x.shape);
  let at = 0;
  const pieces = sizes.map((n) => {
    const shape = x.shape.map((d, i) => (i === a ? n : d));
    const out = alloc(shape, x.dtype, x);
    stridedCopy(x, out, shape, xs, at * xs[a], stridesOf(shape), 0);
    at += n;
    return out;
  });
  recordMany(pieces, 'split', [x], (dys) => {
    const dx = dys.every((d) => d !== null)
      ? alloc(x.shape, dys[0]!.dtype, dys[0]!)
      : zeros(x.shape, x.dtype, x.backend);
    let pos = 0;
    dys.forEach((d, k) => {
      if (d) stridedCopy(d, dx, d.shape, stridesOf(d.shape), 0, xs, pos * xs[a]);
      pos += sizes[k];
    });
    return [dx];
  });
  return pieces;
}

export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  return concat(
    xs.map((x) => unsqueeze(x, axis)),
    axis,
  );
}

/** Materialises x broadcast to `shape` (numpy rules). */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  if (x.ndim === shape.length && x.shape.every((d, i) => d === shape[i])) return reshape(x, shape);
  if (x.ndim > shape.length || x.shape.some((d, i) => d !== 1 && d !== shape[shape.length - x.ndim + i])) {
    throw new Error(`broadcastTo: cannot broadcast ${x.describe()} to ${fmt(shape)}`);
  }
  const out = alloc(shape, x.dtype, x);
  stridedCopy(x, out, shape, broadcastStrides(x.shape, shape), 0, stridesOf(shape), 0);
  return record(out, 'broadcastTo', [x], (dy) => [sumTo(dy, x.shape)]);
}
