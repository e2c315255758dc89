// Softmax family over the last axis of [N, D] (reference kernels), including the fused
// log-softmax-and-gather that turns LM logits into token log-probs without a [N, V] output.
import type { F, I } from './types.js';

/** Target id that contributes nothing (torch's CrossEntropyLoss ignore_index default). */
export const IGNORE_INDEX = -100;

/** max and log(sum(exp(x - max))) of row r; an all -inf row gives lse -inf. */
function rowLse(x: F, r: number, D: number): number {
  let m = -Infinity;
  for (let j = 0; j < D; j++) m = Math.max(m, x[r * D + j]);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let j = 0; j < D; j++) s += Math.exp(x[r * D + j] - m);
  return m + Math.log(s);
}

/** out[r] = exp(x[r] - max) / sum(exp(x[r] - max)). */
export function softmax(x: F, out: F, N: number, D: number): void {
  for (let r = 0; r < N; r++) {
    const lse = rowLse(x, r, D);
    for (let j = 0; j < D; j++) out[r * D + j] = Math.exp(x[r * D + j] - lse);
  }
}

/** out[r] = x[r] - logsumexp(x[r]). */
export function logSoftmax(x: F, out: F, N: number, D: number): void {
  for (let r = 0; r < N; r++) {
    const lse = rowLse(x, r, D);
    for (let j = 0; j < D; j++) out[r * D + j] = x[r * D + j] - lse;
  }
}

/** Backward of softmax given its output y: dx = y * (dy - sum(dy * y)). */
export function softmaxGrad(y: F, dy: F, dx: F, N: number, D: number): void {
  for (let r = 0; r < N; r++) {
    let dot = 0;
    for (let j = 0; j < D; j++) dot += dy[r * D + j] * y[r * D + j];
    for (let j = 0; j < D; j++) dx[r * D + j] = y[r * D + j] * (dy[r * D + j] - dot);
  }
}

/** Backward of log_softmax given its output y: dx = dy - exp(y) * sum(dy). */
export function logSoftmaxGrad(y: F, dy: F, dx: F, N: number, D: number): void {
  for (let r = 0; r < N; r++) {
    let sum = 0;
    for (let j = 0; j < D; j++) sum += dy[r * D + j];
    for (let j = 0; j < D; j++) dx[r * D + j] = dy[r * D + j] - Math.exp(y[r * D + j]) * sum;
  }
}

/** Throws unless every target is in [0, V) or IGNORE_INDEX. */
export function checkTargets(fn: string, targets: I, N: number, V: number): void {
  for (let r = 0; r < N; r++) {
    const t = targets[r];
    if (t !== IGNORE_INDEX && !(t >= 0 && t < V)) {
      throw new Error(
        `${fn}: target ${t} at row ${r} is outside [0, ${V}) (vocab size V = ${V}; ` +
          `use ${IGNORE_INDEX} to ignore a position)`,
      );
    }
  }
}

/**
 * Token log-probs: out[r] = logits[r, t] - logsumexp(logits[r]) for t = targets[r];
 * t = -100 gives 0. logits [N, V], targets [N], out [N].
 */
export function logsoftmaxGather(logits: F, targets: I, out: F, N: number, V: number): void {
  checkTargets('logsoftmaxGather', targets, N, V);
  for (let r = 0; r < N; r++) {
    const t = targets[r];
    out[r] = t === IGNORE_INDEX ? 0 : logits[r * V + t] - rowLse(logits, r, V);
  }
}

/** dlogits[r] = dy[r] * (onehot(t) - softmax(logits[r])); rows with t = -100 get 0. */
export function logsoftmaxGatherGrad(logits: F, targets: I, dy: F, dlogits: F, N: number, V: number): void {
  checkTargets('logsoftmaxGatherGrad', targets, N, V);
  for (let r = 0; r < N; r++) {
    const t = targets[r];
    if (t === IGNORE_INDEX) {
      dlogits.fill(0, r * V, (r + 1) * V);
      continue;
    }
    const lse = rowLse(logits, r, V);
    for (let j = 0; j < V; j++) dlogits[r * V + j] = -dy[r] * Math.exp(logits[r * V + j] - lse);
    dlogits[r * V + t] += dy[r];
  }
}
