// The op lists that more than one op test walks (grad.test.ts on the CPU in float64,
// test/webgpu/ops.test.ts against the CPU).
import * as E from '../../src/core/index.js';
import type { Tensor } from '../../src/core/index.js';

/** Every elementwise unary op, by name. */
export const UNARY_OPS: [string, (x: Tensor) => Tensor][] = [
  ['neg', E.neg],
  ['exp', E.exp],
  ['log', E.log],
  ['tanh', E.tanh],
  ['sigmoid', E.sigmoid],
  ['logSigmoid', E.logSigmoid],
  ['softplus', E.softplus],
  ['relu', E.relu],
  ['gelu tanh', (x) => E.gelu(x, 'tanh')],
  ['gelu erf', (x) => E.gelu(x, 'erf')],
  ['silu', E.silu],
  ['sqrt', E.sqrt],
  ['rsqrt', E.rsqrt],
  ['square', E.square],
  ['abs', E.abs],
  ['recip', E.recip],
  ['affine', (x) => E.affine(x, -1.7, 0.3)],
];

/** Input ranges of the ops defined only for positive numbers (the others take any). */
export const UNARY_DOMAINS: Record<string, [number, number]> = {
  log: [0.2, 3],
  sqrt: [0.2, 3],
  rsqrt: [0.2, 3],
  recip: [0.3, 3],
};
