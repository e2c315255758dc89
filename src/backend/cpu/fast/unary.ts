// Wrappers of the elementwise unary kernels (assembly/unary.ts, generated from ../../elementwise-ops.ts): op names to
// codes, work split.
import { UNARY_OPS, type UnaryOp } from '../../ref/unary.js';
import { UNARY_DEFS } from '../../elementwise-ops.js';
import type { KernelRuntime } from '../runtime.js';
import { runElements } from './split.js';

/** Relative cost per element: transcendentals go parallel at smaller sizes. */
function cost(op: UnaryOp): number {
  return UNARY_DEFS[op].cheap ? 1 : 8;
}

function code(fn: string, op: UnaryOp): number {
  const c = UNARY_OPS[op];
  if (c === undefined) throw new Error(`${fn}: unknown op '${op}' (one of ${Object.keys(UNARY_OPS).join(', ')})`);
  return c;
}

/** out = f(x) for n float32 elements at byte addresses x, out (may be equal). */
export function unary(rt: KernelRuntime, op: UnaryOp, x: number, out: number, n: number): void {
  runElements(rt, 'unary', [code('unary', op), x, out, n], n, cost(op));
}

/** dx = f'(x) dy. */
export function unaryGrad(rt: KernelRuntime, op: UnaryOp, x: number, dy: number, dx: number, n: number): void {
  runElements(rt, 'unary_grad', [code('unaryGrad', op), x, dy, dx, n], n, cost(op));
}
