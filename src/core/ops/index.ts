// All differentiable ops, and the hooks that let autograd accumulate gradients without an
// import cycle.
import { setBackwardHooks } from '../autograd.js';
import { full } from '../tensor.js';
import { add, addInto, copy } from './elementwise.js';

export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './linalg.js';
export * from './nn.js';
export { setDebugNaN } from './util.js';

setBackwardHooks({
  add,
  addInto,
  copy,
  ones: (like) => full(like.shape, 1, like.dtype, like.backend),
});
