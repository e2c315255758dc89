// Elementwise ops with numpy broadcasting, and their vector-Jacobian products.
import { record } from '../autograd.js';
import type { BinaryOp, UnaryOp } from '../kernels.js';
import type { DType } from '../dtype.js';
import { broadcastShapes, broadcastStrides, collapseDims, sameShape } from '../shape.js';
import { scalar, type Tensor } from '../tensor.js';
import { sumTo } from './reduce.js';
import { alloc, checked, expectFloat, expectSameDtype, kernelsOf } from './util.js';

// ---- one input -------------------------------------------------------------------------------

export function unary(op: UnaryOp, x: Tensor): Tensor {
  expectFloat(op, x);
  const out = alloc(x.shape, x.dtype, x);
  kernelsOf(op, x).unary({ op, x: x.storage, out: out.storage, n: x.size });
  checked(op, out, [x]);
  return record(out, op, [x], (dy) => [unaryGrad(op, x, dy)]);
}

/** f'(x) * dy, the backward of unary(op) (not itself differentiable). */
function unaryGrad(op: UnaryOp, x: Tensor, dy: Tensor): Tensor {
  const dx = alloc(x.shape, x.dtype, x);
  kernelsOf(op, x, dy).unaryGrad({ op, x: x.storage, dy: dy.storage, dx: dx.storage, n: x.size });
  return checked(`${op} backward`, dx, [x, dy]);
}

export const neg = (x: Tensor): Tensor => unary('neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
/** log(sigmoid(x)), stable for large |x|. */
export const logSigmoid = (x: Tensor): Tensor => unary('logsigmoid', x);
export const softplus = (x: Tensor): Tensor => unary('softplus', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
/** GELU, 'tanh' (gelu_pytorch_tanh / gelu_new) or 'erf' (exact) form. */
export const gelu = (x: Tensor, form: 'tanh' | 'erf' = 'erf'): Tensor =>
  unary(form === 'tanh' ? 'gelu_tanh' : 'gelu_erf', x);
export const silu = (x: Tensor): Tensor => unary('silu', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const recip = (x: Tensor): Tensor => unary('recip', x);

/** x * scale + shift. */
export function affine(x: Tensor, scale: number, shift = 0): Tensor {
  expectFloat('affine', x);
  const out = alloc(x.shape, x.dtype, x);
  kernelsOf('affine', x).affine({ x: x.storage, out: out.storage, n: x.size, scale, shift });
  checked('affine', out, [x]);
  return record(out, 'affine', [x], (dy) => [affine(dy, scale, 0)]);
}

export const mulScalar = (x: Tensor, s: number): Tensor => affine(x, s, 0);
export const addScalar = (x: Tensor, s: number): Tensor => affine(x, 1, s);

// ---- two inputs ------------------------------------------------------------------------------

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, outDtype: DType = a.dtype): Tensor {
  expectSameDtype(op, a, b);
  const shape = broadcastShapes(a.shape, b.shape, op);
  const out = alloc(shape, outDtype, a);
  const full = collapseDims(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)]);
  kernelsOf(op, a, b).binary({
    op,
    a: a.storage,
    b: b.storage,
    out: out.storage,
    shape: full.shape,
    aStrides: full.strides[0],
    bStrides: full.strides[1],
  });
  return checked(op, out, [a, b]);
}

/** Accepts a number for either operand (a scalar tensor of the other's dtype). */
type Operand = Tensor | number;
function operands(a: Operand, b: Operand): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number')
    throw new Error('binary op: at least one operand must be a tensor');
  const ta = typeof a === 'number' ? scalar(a, (b as Tensor).dtype, (b as Tensor).backend) : a;
  const tb = typeof b === 'number' ? scalar(b, ta.dtype, ta.backend) : b;
  return [ta, tb];
}

export function add(x: Operand, y: Operand): Tensor {
  const [a, b] = operands(x, y);
  return record(binaryRaw('add', a, b), 'add', [a, b], (dy) => [sumTo(dy, a.shape), sumTo(dy, b.shape)]);
}

export function sub(x: Operand, y: Operand): Tensor {
  const [a, b] = operands(x, y);
  return record(binaryRaw('sub', a, b), 'sub', [a, b], (dy) => [
    sumTo(dy, a.shape),
    b.requiresGrad ? sumTo(neg(dy), b.shape) : null,
  ]);
}

export function mul(x: Operand, y: Operand): Tensor {
  const [a, b] = operands(x, y);
  return record(binaryRaw('mul', a, b), 'mul', [a, b], (dy) => [
    a.requiresGrad ? sumTo(binaryRaw('mul', dy, b), a.shape) : null,
    b.requiresGrad ? sumTo(binaryRaw('mul', dy, a), b.shape) : null,
  ]);
}

export function div(x: Operand, y: Operand): Tensor {
  const [a, b] = operands(x, y);
  const out = binaryRaw('div', a, b);
  return record(out, 'div', [a, b], (dy) => [
    a.requiresGrad ? sumTo(binaryRaw('div', dy, b), a.shape) : null,
    // d(a/b)/db = -(a/b) / b
    b.requiresGrad ? sumTo(neg(binaryRaw('div', binaryRaw('mul', dy, out), b)), b.shape) : null,
  ]);
}

export function maximum(x: Operand, y: Operand): Tensor {
  const [a, b] = operands(x, y);
  return minmax('max', a, b);
}

export function minimum(x: Operand, y: Operand): Tensor {
  const [a, b] = operands(x, y);
  return minmax('min', a, b);
}

/** Ties send the gradient to the first operand. */
function minmax(op: 'max' | 'min', a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw(op, a, b);
  return record(out, op, [a, b], (dy) => {
    const pickA = op === 'max' ? binaryRaw('ge', a, b) : binaryRaw('ge', b, a); // 1 where a wins
    return [
      a.requiresGrad ? sumTo(binaryRaw('mul', dy, pickA), a.shape) : null,
      b.requiresGrad ? sumTo(binaryRaw('mul', dy, affine(pickA, -1, 1)), b.shape) : null,
    ];
  });
}

/** a ** b elementwise. */
export function pow(x: Operand, y: Operand): Tensor {
  const [a, b] = operands(x, y);
  const out = binaryRaw('pow', a, b);
  return record(out, 'pow', [a, b], (dy) => [
    // d/da = b a^(b-1) = b * out / a (a != 0); computed directly to stay exact at a = 0.
    a.requiresGrad
      ? sumTo(binaryRaw('mul', dy, binaryRaw('mul', b, binaryRaw('pow', a, affine(b, 1, -1)))), a.shape)
      : null,
    b.requiresGrad ? sumTo(binaryRaw('mul', dy, binaryRaw('mul', out, unary('log', a))), b.shape) : null,
  ]);
}

/** Comparisons give 0/1 in the operands' dtype and no gradient. */
export const gt = (x: Operand, y: Operand): Tensor => binaryRaw('gt', ...operands(x, y));
export const ge = (x: Operand, y: Operand): Tensor => binaryRaw('ge', ...operands(x, y));
export const eq = (x: Operand, y: Operand): Tensor => binaryRaw('eq', ...operands(x, y));

/** out = cond != 0 ? a : b, broadcasting all three. */
export function where(cond: Tensor, x: Operand, y: Operand): Tensor {
  const [a, b] = operands(x, y);
  expectSameDtype('where', a, b);
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
  const out = alloc(shape, a.dtype, a);
  const full = collapseDims(
    shape,
    [cond, a, b].map((t) => broadcastStrides(t.shape, shape)),
  );
  kernelsOf('where', cond, a, b).where({
    cond: cond.storage,
    a: a.storage,
    b: b.storage,
    out: out.storage,
    shape: full.shape,
    condStrides: full.strides[0],
    aStrides: full.strides[1],
    bStrides: full.strides[2],
  });
  checked('where', out, [cond, a, b]);
  return record(out, 'where', [cond, a, b], (dy) => {
    const zero = scalar(0, dy.dtype, dy.backend);
    return [
      null,
      a.requiresGrad ? sumTo(where(cond, dy, zero), a.shape) : null,
      b.requiresGrad ? sumTo(where(cond, zero, dy), b.shape) : null,
    ];
  });
}

/** x with `value` wherever mask != 0. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, scalar(value, x.dtype, x.backend), x);
}

/** Converts the dtype; float <-> float is differentiable, to or from i32 is not. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const out = alloc(x.shape, dtype, x);
  kernelsOf('cast', x).cast({ src: x.storage, dst: out.storage, n: x.size });
  if (dtype === 'i32' || x.dtype === 'i32') return out;
  return record(out, 'cast', [x], (dy) => [cast(dy, x.dtype)]);
}

/** A copy with its own storage. */
export function copy(x: Tensor): Tensor {
  const out = alloc(x.shape, x.dtype, x);
  kernelsOf('copy', x).copy({
    src: x.storage,
    dst: out.storage,
    shape: [x.size],
    srcStrides: [1],
    dstStrides: [1],
    srcOffset: 0,
    dstOffset: 0,
  });
  return record(out, 'copy', [x], (dy) => [dy]);
}

/** target += g, in place (gradient accumulation; no autograd). */
export function addInto(target: Tensor, g: Tensor): void {
  if (!sameShape(target.shape, g.shape))
    throw new Error(`addInto: ${target.describe()} += ${g.describe()}: shapes differ`);
  kernelsOf('addInto', target, g).binary({
    op: 'add',
    a: target.storage,
    b: g.storage,
    out: target.storage,
    shape: [target.size],
    aStrides: [1],
    bStrides: [1],
  });
}
