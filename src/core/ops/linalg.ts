// Matrix products: batched matmul with transposed operands, and linear layers (x W^T + b, with
// W stored [out, in] as in PyTorch / Hugging Face checkpoints).
import { record } from '../autograd.js';
import { fmt, sizeOf } from '../shape.js';
import { ownedView, viewOf, type Tensor } from '../tensor.js';
import { sum, sumTo } from './reduce.js';
import { broadcastTo } from './shape.js';
import { alloc, checked, expectFloat, expectWeight, kernelsOf } from './util.js';

export interface MatmulOptions {
  /** Use a's last two dims transposed (a stored [..., K, M]). */
  transA?: boolean;
  /** Use b's last two dims transposed (b stored [..., N, K]). */
  transB?: boolean;
}

/**
 * op(a) @ op(b) over the last two dims; leading (batch) dims broadcast. a: [..., M, K],
 * b: [..., K, N] (before transposition) -> [..., M, N].
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false,
    transB = opts.transB ?? false;
  expectFloat('matmul', a);
  expectWeight('matmul', a, b);
  if (a.ndim < 2 || b.ndim < 2)
    throw new Error(`matmul: operands need at least 2 dims, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  const [M, Ka] = transA ? [a.shape[a.ndim - 1], a.shape[a.ndim - 2]] : [a.shape[a.ndim - 2], a.shape[a.ndim - 1]];
  const [Kb, N] = transB ? [b.shape[b.ndim - 1], b.shape[b.ndim - 2]] : [b.shape[b.ndim - 2], b.shape[b.ndim - 1]];
  if (Ka !== Kb) {
    throw new Error(
      `matmul: inner dims differ: ${fmt(a.shape)}${transA ? '^T' : ''} ` +
        `@ ${fmt(b.shape)}${transB ? '^T' : ''} (${Ka} vs ${Kb})`,
    );
  }
  const K = Ka;
  const batchA = a.shape.slice(0, -2),
    batchB = b.shape.slice(0, -2);
  const batchShape = broadcastBatch(batchA, batchB, a, b);
  const batch = sizeOf(batchShape);
  const nA = sizeOf(batchA),
    nB = sizeOf(batchB);

  // A stack of rows times one matrix is a single 2D product: fold the batch into M.
  if (!transA && nB === 1 && nA > 1) {
    const a2 = viewOf(a, [nA * M, K]);
    const out2 = product(a2, viewOf(b, b.shape.slice(-2)), nA * M, N, K, false, transB, 1, 0, 0);
    return record(ownedView(out2, [...batchShape, M, N]), 'matmul', [a, b], (dy) => grads(dy, a, b, transA, transB));
  }
  // Otherwise broadcast materially where batch dims differ, then one batched call.
  const ea = nA === batch || nA === 1 ? a : broadcastTo(a, [...batchShape, ...a.shape.slice(-2)]);
  const eb = nB === batch || nB === 1 ? b : broadcastTo(b, [...batchShape, ...b.shape.slice(-2)]);
  const out = product(
    ea,
    eb,
    M,
    N,
    K,
    transA,
    transB,
    batch,
    nA === 1 && batch > 1 ? 0 : M * K,
    nB === 1 && batch > 1 ? 0 : K * N,
  );
  return record(ownedView(out, [...batchShape, M, N]), 'matmul', [a, b], (dy) => grads(dy, a, b, transA, transB));
}

function broadcastBatch(x: readonly number[], y: readonly number[], a: Tensor, b: Tensor): number[] {
  const n = Math.max(x.length, y.length);
  return Array.from({ length: n }, (_, i) => {
    const dx = x[x.length - n + i] ?? 1,
      dy = y[y.length - n + i] ?? 1;
    if (dx !== dy && dx !== 1 && dy !== 1)
      throw new Error(`matmul: batch dims of ${fmt(a.shape)} and ${fmt(b.shape)} do not broadcast`);
    return Math.max(dx, dy);
  });
}

/** One kernel call: [batch, M, N] = op(a) op(b). */
function product(
  a: Tensor,
  b: Tensor,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  batch: number,
  strideA: number,
  strideB: number,
): Tensor {
  const c = alloc([batch, M, N], a.dtype, a);
  kernelsOf('matmul', a, b).matmul({
    a: a.storage,
    b: b.storage,
    c: c.storage,
    M,
    N,
    K,
    transA,
    transB,
    accumulate: false,
    batch,
    strideA,
    strideB,
    strideC: M * N,
  });
  return checked('matmul', c, [a, b]);
}

/**
 * C = A' B' with A' = op(A), B' = op(B): dA' = dC B'^T and dB' = A'^T dC; a transposed operand
 * gets the transpose of that. Each case is one matmul with the right flags.
 */
function grads(dy: Tensor, a: Tensor, b: Tensor, transA: boolean, transB: boolean): (Tensor | null)[] {
  let da: Tensor | null = null,
    db: Tensor | null = null;
  if (a.requiresGrad) {
    da = transA
      ? matmul(b, dy, { transA: transB, transB: true }) // B' dC^T
      : matmul(dy, b, { transB: !transB }); // dC B'^T
    da = reduceBatch(da, a);
  }
  if (b.requiresGrad) {
    if (b.ndim === 2 && dy.ndim > 2 && !transA) {
      // b was shared by every batch element: fold the batch into K of a single product.
      const rows = dy.size / dy.shape[dy.ndim - 1];
      const a2 = viewOf(a, [rows, a.shape[a.ndim - 1]]),
        d2 = viewOf(dy, [rows, dy.shape[dy.ndim - 1]]);
      db = transB ? matmul(d2, a2, { transA: true }) : matmul(a2, d2, { transA: true });
    } else {
      db = transB
        ? matmul(dy, a, { transA: true, transB: transA }) // dC^T A'
        : matmul(a, dy, { transA: !transA }); // A'^T dC
      db = reduceBatch(db, b);
    }
  }
  return [da, db];
}

/** Sums a gradient over batch dims that the operand was broadcast along. */
function reduceBatch(g: Tensor, x: Tensor): Tensor {
  return g.ndim === x.ndim && g.shape.every((d, i) => d === x.shape[i]) ? g : sumTo(g, x.shape);
}

/**
 * x @ w^T + bias as one op: x [..., in], w [out, in] (or [in, out] when `transposed`, GPT-2's
 * Conv1D), bias [out]. The bias is added in place, so no pre-bias copy is kept for backward.
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null, opts: { transposed?: boolean } = {}): Tensor {
  const t = opts.transposed ?? false;
  const [outF, inF] = t ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
  if (w.ndim !== 2 || x.shape[x.ndim - 1] !== inF) {
    throw new Error(`linear: input ${x.describe()} does not match weight ${w.describe()} (expects last dim ${inF})`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF))
    throw new Error(`linear: bias ${bias.describe()} does not match weight ${w.describe()}`);
  expectWeight('linear', x, w);
  const N = x.size / inF;
  const y = product(viewOf(x, [N, inF]), w, N, outF, inF, false, !t, 1, 0, 0); // (N, out)
  if (bias) {
    kernelsOf('linear', y, bias).binary({
      op: 'add',
      a: y.storage,
      b: bias.storage,
      out: y.storage,
      shape: [N, outF],
      aStrides: [outF, 1],
      bStrides: [0, 1],
    });
  }
  const out = ownedView(y, [...x.shape.slice(0, -1), outF]);
  const inputs = bias ? [x, w, bias] : [x, w];
  return record(checked('linear', out, inputs), 'linear', inputs, (dy) => {
    const d2 = viewOf(dy, [N, outF]),
      x2 = viewOf(x, [N, inF]);
    const dx = x.requiresGrad ? ownedView(matmul(d2, w, { transB: t }), x.shape) : null;
    const dw = w.requiresGrad ? (t ? matmul(x2, d2, { transA: true }) : matmul(d2, x2, { transA: true })) : null;
    const db = bias?.requiresGrad ? sum(d2, 0) : null;
    return bias ? [dx, dw, db] : [dx, dw];
  });
}
