// Reductions over axes (sum, mean, max) and sumTo, which folds a broadcast gradient back to the
// shape of the operand it was broadcast from.
import { record } from '../autograd.js';
import { axisOf, fmt, sizeOf, type Shape } from '../shape.js';
import { ownedView, viewOf, type Tensor } from '../tensor.js';
import { broadcastTo } from './shape.js';
import { alloc, checked, expectFloat, kernelsOf } from './util.js';

/** Reduces the axes [lo, hi) of x in one kernel call; the result keeps them as size-1 dims. */
function reduceRange(op: 'sum' | 'max', x: Tensor, lo: number, hi: number): Tensor {
  const outer = sizeOf(x.shape.slice(0, lo)),
    red = sizeOf(x.shape.slice(lo, hi)),
    inner = sizeOf(x.shape.slice(hi));
  const shape = x.shape.map((d, i) => (i >= lo && i < hi ? 1 : d));
  const out = alloc(shape, x.dtype, x);
  kernelsOf(op, x).reduce({ op, x: x.storage, out: out.storage, outer, red, inner });
  return checked(op, out, [x]);
}

/** Sorted, de-duplicated, non-negative axes; all axes when undefined. */
function normAxes(axes: number | readonly number[] | undefined, ndim: number, op: string): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  return [...new Set(list.map((a) => axisOf(a, ndim, op)))].sort((a, b) => a - b);
}

/** Sums runs of consecutive axes, one kernel call per run (keepdims shape). */
function sumKeep(x: Tensor, axes: number[]): Tensor {
  let y = x;
  for (let i = 0; i < axes.length;) {
    let j = i;
    while (j + 1 < axes.length && axes[j + 1] === axes[j] + 1) j++;
    const next = reduceRange('sum', y, axes[i], axes[j] + 1);
    if (y !== x) y.dispose();
    y = next;
    i = j + 1;
  }
  return y === x ? viewOf(x, x.shape) : y;
}

function dropAxes(shape: Shape, axes: number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

export function sum(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  expectFloat('sum', x);
  const ax = normAxes(axes, x.ndim, 'sum');
  const kept = sumKeep(x, ax);
  const keptShape = kept.shape;
  const out = keepdims ? kept : ownedView(kept, dropAxes(x.shape, ax));
  return record(out, 'sum', [x], (dy) => [broadcastTo(viewOf(dy, keptShape), x.shape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  const ax = normAxes(axes, x.ndim, 'mean');
  const n = ax.reduce((acc, a) => acc * x.shape[a], 1);
  return mulScalarLocal(sum(x, ax, keepdims), 1 / n);
}

/** Max over one axis. Ties each receive the full gradient. */
export function max(x: Tensor, axis: number, keepdims = false): Tensor {
  expectFloat('max', x);
  const a = axisOf(axis, x.ndim, 'max');
  const kept = reduceRange('max', x, a, a + 1);
  const out = keepdims ? kept : viewOf(kept, dropAxes(x.shape, [a]));
  return record(out, 'max', [x], (dy) => {
    const hit = eqLocal(x, broadcastTo(kept, x.shape));
    return [mulLocal(hit, broadcastTo(viewOf(dy, kept.shape), x.shape))];
  });
}

/**
 * Sums g (of a broadcast shape) down to `shape`: leading extra dims and dims where shape has 1.
 * Returns g itself when nothing needs summing.
 */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.ndim === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const off = g.ndim - shape.length;
  if (off < 0) throw new Error(`sumTo: cannot reduce ${fmt(g.shape)} to ${fmt(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < off) axes.push(i);
    else if (shape[i - off] === 1 && g.shape[i] !== 1) axes.push(i);
    else if (shape[i - off] !== g.shape[i]) throw new Error(`sumTo: cannot reduce ${fmt(g.shape)} to ${fmt(shape)}`);
  }
  return ownedView(sum(g, axes, true), shape);
}

// Tiny local helpers (no autograd needed inside vjps) to keep this file free of import cycles.
function mulScalarLocal(x: Tensor, s: number): Tensor {
  const out = alloc(x.shape, x.dtype, x);
  kernelsOf('mean', x).affine({ x: x.storage, out: out.storage, n: x.size, scale: s, shift: 0 });
  return record(out, 'mean', [x], (dy) => [mulScalarLocal(dy, s)]);
}

function binaryLocal(op: 'eq' | 'mul', a: Tensor, b: Tensor): Tensor {
  const out = alloc(a.shape, a.dtype, a);
  kernelsOf(op, a, b).binary({
    op,
    a: a.storage,
    b: b.storage,
    out: out.storage,
    shape: [a.size],
    aStrides: [1],
    bStrides: [1],
  });
  return out;
}
const eqLocal = (a: Tensor, b: Tensor): Tensor => binaryLocal('eq', a, b);
const mulLocal = (a: Tensor, b: Tensor): Tensor => binaryLocal('mul', a, b);
