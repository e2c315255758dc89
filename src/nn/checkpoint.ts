// Activation checkpointing (torch.utils.checkpoint's idea): a block's forward keeps only its input
// and output; backward runs the block again with recording on and backpropagates through that
// recomputation. The parameters the block uses get their gradients added straight into .grad
// during the nested backward, so the checkpoint node hands back the input's gradient only.
import { backward, detach, gradEnabled, record, withGrad } from '../core/autograd.js';
import { tidy, type Tensor } from '../core/tensor.js';
import type { LoraDropout } from './linear.js';

/**
 * dL/dx for y = fn(x) given dL/dy (same shape as y), by running fn again on a leaf copy of x;
 * null when `needX` is false. Gradients of the parameters fn uses are accumulated on the way.
 * Everything the recomputation made is freed before it returns.
 */
export function recomputeVjp(fn: (x: Tensor) => Tensor, x: Tensor, dy: Tensor, needX: boolean): Tensor | null {
  return tidy(() =>
    withGrad(() => {
      const leaf = detach(x);
      leaf.requiresGrad = needX;
      const y = fn(leaf);
      if (!y.requiresGrad) return null;
      backward(y, { grad: dy, free: true });
      const g = leaf.grad;
      leaf.grad = null; // the leaf is disposed with the scope; its gradient is the result
      return g;
    }),
  );
}

/**
 * y = fn(x) without keeping fn's activations: they are freed at once and recomputed in backward.
 * `params` are the trainable tensors fn reads (they make y require a gradient and get theirs
 * during the recomputation). `drop`, the forward's LoRA dropout, draws the same masks in the
 * recomputation. Without recording (noGrad) this is fn(x).
 */
export function checkpoint(
  fn: (x: Tensor) => Tensor,
  x: Tensor,
  params: readonly Tensor[],
  drop: LoraDropout | null = null,
): Tensor {
  if (!gradEnabled()) return fn(x);
  const trainable = params.filter((p) => p.requiresGrad);
  if (!x.requiresGrad && trainable.length === 0) return fn(x);
  const calls = drop?.calls ?? 0;
  // Recording stays on (LoRA dropout draws only then), but the graph dies with the scope.
  const y = tidy(() => detach(fn(x)));
  const after = drop?.calls ?? 0;
  return record(y, 'checkpoint', [x, ...trainable], (dy) => {
    if (drop) drop.calls = calls;
    try {
      return [recomputeVjp(fn, x, dy, x.requiresGrad), ...trainable.map(() => null)];
    } finally {
      if (drop) drop.calls = after;
    }
  });
}
