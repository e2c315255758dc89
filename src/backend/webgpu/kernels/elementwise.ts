// Elementwise kernels: fill, strided copy, cast, unary functions and their derivatives,
// broadcasting binary ops, where, affine. One thread per output element over a 2D grid;
// strided views carry up to 8 dims (after the core collapses contiguous ones).
import type { KernelArgs } from '../../../core/kernels.js';
import { BINARY_DEFS, UNARY_DEFS } from '../../elementwise-ops.js';
import { MATH, SPECIAL, at, grid, perElement } from '../wgsl.js';
import type { GpuStorage } from '../storage.js';
import { mergeIds } from '../storage.js';
import { buf, f32Only, type Ctx } from './context.js';

const MAX_DIMS = 8;

function dimsOk(fn: string, shape: readonly number[]): void {
  if (shape.length > MAX_DIMS)
    throw new Error(`webgpu ${fn}: ${shape.length} dims after collapsing (at most ${MAX_DIMS})`);
}

/** Offsets of element i in up to three strided views (row-major over P.shape). */
function stridedOffsets(names: string[], bases: string[]): string {
  const decl = names.map((n, k) => `var o_${n} = ${bases[k]};`).join(' ');
  const add = names.map((n) => `o_${n} += c * ${at(n, 'du')};`).join(' ');
  return `${decl}
  var rem = i;
  for (var d = i32(P.ndim) - 1; d >= 0; d--) {
    let du = u32(d);
    let s = ${at('shape', 'du')};
    let c = rem % s;
    rem = rem / s;
    ${add}
  }`;
}

export function fill(ctx: Ctx, a: KernelArgs['fill']): void {
  const n = a.out.size;
  const k = ctx.rt.kernel('fill', () => ({
    name: 'fill',
    params: [
      ['n', 'u32'],
      ['bits', 'u32'],
    ],
    buffers: [['out', 'u32', 'read_write']],
    body: perElement('out[i] = P.bits;'),
  }));
  f32Only('fill', a.out);
  const bits = a.out.dtype === 'f32' ? new Uint32Array(Float32Array.of(a.value).buffer)[0] : (a.value | 0) >>> 0;
  ctx.rt.run(k, [buf(a.out)], [n, bits], grid(n));
  const s = a.out as GpuStorage;
  if (s.dtype === 'i32') s.ids = mergeIds(s.ids, { min: a.value, max: a.value, ignore: a.value === -100, host: null });
}

export function copy(ctx: Ctx, a: KernelArgs['copy']): void {
  f32Only('copy', a.src, a.dst);
  dimsOk('copy', a.shape);
  const n = a.shape.reduce((x, y) => x * y, 1);
  if (n === 0) return;
  const src = buf(a.src),
    dst = buf(a.dst);
  if (a.src.dtype === 'i32' || a.dst.dtype === 'i32') {
    const d = a.dst as GpuStorage;
    d.ids = mergeIds(d.ids, (a.src as GpuStorage).ids);
  }
  const contiguous =
    a.shape.every((_, i) => a.srcStrides[i] === a.dstStrides[i]) &&
    a.shape.every((_, i) => a.srcStrides[i] === a.shape.slice(i + 1).reduce((x, y) => x * y, 1));
  if (contiguous && src !== dst) {
    ctx.rt.copy(src, a.srcOffset * 4, dst, a.dstOffset * 4, n * 4);
    return;
  }
  const k = ctx.rt.kernel('copy', () => ({
    name: 'copy',
    params: [
      ['shape', 'u32x8'],
      ['src_s', 'u32x8'],
      ['dst_s', 'u32x8'],
      ['ndim', 'u32'],
      ['n', 'u32'],
      ['src_off', 'u32'],
      ['dst_off', 'u32'],
    ],
    buffers: [
      ['src', 'u32', 'read'],
      ['dst', 'u32', 'read_write'],
    ],
    body: perElement(`${stridedOffsets(['src_s', 'dst_s'], ['P.src_off', 'P.dst_off'])}
  dst[o_dst_s] = src[o_src_s];`),
  }));
  ctx.rt.run(
    k,
    [src, dst],
    [a.shape, a.srcStrides, a.dstStrides, a.shape.length, n, a.srcOffset, a.dstOffset],
    grid(n),
  );
}

export function cast(ctx: Ctx, a: KernelArgs['cast']): void {
  f32Only('cast', a.src, a.dst);
  const from = a.src.dtype,
    to = a.dst.dtype;
  if (from === to) {
    ctx.rt.copy(buf(a.src), 0, buf(a.dst), 0, a.n * 4);
    return;
  }
  const toInt = to === 'i32';
  const k = ctx.rt.kernel(`cast_${from}_${to}`, () => ({
    name: `cast ${from} -> ${to}`,
    params: [['n', 'u32']],
    buffers: [
      ['src', from, 'read'],
      ['dst', to, 'read_write'],
    ],
    // float -> int truncates toward zero, saturates, and maps NaN to 0 (i32.trunc_sat_f32_s).
    body: perElement(
      toInt
        ? `let v = src[i];
  let t = select(i32(clamp(v, -2147483648.0, 2147483520.0)), 2147483647, v >= 2147483648.0);
  dst[i] = select(t, 0, is_nan(v));`
        : 'dst[i] = f32(src[i]);',
      SPECIAL,
    ),
  }));
  ctx.rt.run(k, [buf(a.src), buf(a.dst)], [a.n], grid(a.n));
  if (toInt) (a.dst as GpuStorage).ids = null;
}

// f(x) and f'(x) of each unary op, a (op) b of each binary op: the wgsl forms of src/backend/elementwise-ops.ts.
export function unary(ctx: Ctx, a: KernelArgs['unary']): void {
  f32Only(a.op, a.x);
  const k = ctx.rt.kernel(`unary_${a.op}`, () => ({
    name: `unary ${a.op}`,
    params: [['n', 'u32']],
    buffers: [
      ['xs', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    body: perElement(`let x = xs[i]; out[i] = ${UNARY_DEFS[a.op].wgsl.f};`, SPECIAL + MATH),
  }));
  ctx.rt.run(k, [buf(a.x), buf(a.out)], [a.n], grid(a.n));
}

export function unaryGrad(ctx: Ctx, a: KernelArgs['unaryGrad']): void {
  f32Only(a.op, a.x);
  const k = ctx.rt.kernel(`unary_grad_${a.op}`, () => ({
    name: `unary grad ${a.op}`,
    params: [['n', 'u32']],
    buffers: [
      ['xs', 'f32', 'read'],
      ['dy', 'f32', 'read'],
      ['dx', 'f32', 'read_write'],
    ],
    body: perElement(
      `let x = xs[i]; dx[i] = (${UNARY_DEFS[a.op].wgsl.df}) * dy[i];`,
      SPECIAL + MATH + (UNARY_DEFS[a.op].wgsl.helpers ?? ''),
    ),
  }));
  ctx.rt.run(k, [buf(a.x), buf(a.dy), buf(a.dx)], [a.n], grid(a.n));
}

/** Math.pow's cases: x^0 = 1, negative bases with integer exponents, 0^y. */
const POW = /* wgsl */ `
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (is_nan(x) || is_nan(y)) { return x + y; }
  if (x == 0.0) { return select(pos_inf(), 0.0, y > 0.0); }
  let integer = y == floor(y);
  if (x < 0.0 && !integer) { return nan_f32(); }
  let r = exp_(y * log_(abs(x)));
  let odd = integer && abs(y) < 16777216.0 && (i32(abs(y)) & 1) == 1;
  return select(r, -r, x < 0.0 && odd);
}
`;

export function binary(ctx: Ctx, a: KernelArgs['binary']): void {
  f32Only(a.op, a.a, a.b);
  if (a.a.dtype !== 'f32' || a.b.dtype !== 'f32') {
    throw new Error(
      `webgpu binary ${a.op}: operands must be f32, got ${a.a.dtype} and ${a.b.dtype} (cast int32 to f32 first)`,
    );
  }
  dimsOk(a.op, a.shape);
  const n = a.shape.reduce((x, y) => x * y, 1);
  const flat = a.shape.length === 1 && a.aStrides[0] === 1 && a.bStrides[0] === 1;
  const k = ctx.rt.kernel(`binary_${a.op}_${flat}`, () => ({
    name: `binary ${a.op}`,
    params: [
      ['shape', 'u32x8'],
      ['st_a', 'u32x8'],
      ['st_b', 'u32x8'],
      ['ndim', 'u32'],
      ['n', 'u32'],
    ],
    buffers: [
      ['xa', 'f32', 'read'],
      ['xb', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    body: perElement(
      flat
        ? `let a = xa[i]; let b = xb[i]; out[i] = ${BINARY_DEFS[a.op].wgsl};`
        : `${stridedOffsets(['st_a', 'st_b'], ['0u', '0u'])}
  let a = xa[o_st_a]; let b = xb[o_st_b];
  out[i] = ${BINARY_DEFS[a.op].wgsl};`,
      SPECIAL + MATH + POW,
    ),
  }));
  ctx.rt.run(k, [buf(a.a), buf(a.b), buf(a.out)], [a.shape, a.aStrides, a.bStrides, a.shape.length, n], grid(n));
}

export function where(ctx: Ctx, a: KernelArgs['where']): void {
  f32Only('where', a.cond, a.a, a.b);
  dimsOk('where', a.shape);
  const n = a.shape.reduce((x, y) => x * y, 1);
  const ct = a.cond.dtype;
  // a and b are selected as raw 32-bit words, so one kernel serves f32 and i32 values.
  const k = ctx.rt.kernel(`where_${ct}`, () => ({
    name: 'where',
    params: [
      ['shape', 'u32x8'],
      ['st_c', 'u32x8'],
      ['st_a', 'u32x8'],
      ['st_b', 'u32x8'],
      ['ndim', 'u32'],
      ['n', 'u32'],
    ],
    buffers: [
      ['cond', ct, 'read'],
      ['xa', 'u32', 'read'],
      ['xb', 'u32', 'read'],
      ['out', 'u32', 'read_write'],
    ],
    body: perElement(`${stridedOffsets(['st_c', 'st_a', 'st_b'], ['0u', '0u', '0u'])}
  out[i] = select(xb[o_st_b], xa[o_st_a], cond[o_st_c] != ${ct === 'f32' ? '0.0' : '0'});`),
  }));
  ctx.rt.run(
    k,
    [buf(a.cond), buf(a.a), buf(a.b), buf(a.out)],
    [a.shape, a.condStrides, a.aStrides, a.bStrides, a.shape.length, n],
    grid(n),
  );
  if (a.out.dtype === 'i32') (a.out as GpuStorage).ids = null;
}

export function affine(ctx: Ctx, a: KernelArgs['affine']): void {
  f32Only('affine', a.x);
  const k = ctx.rt.kernel('affine', () => ({
    name: 'affine',
    params: [
      ['n', 'u32'],
      ['scale', 'f32'],
      ['shift', 'f32'],
    ],
    buffers: [
      ['xs', 'f32', 'read'],
      ['out', 'f32', 'read_write'],
    ],
    body: perElement('out[i] = xs[i] * P.scale + P.shift;'),
  }));
  ctx.rt.run(k, [buf(a.x), buf(a.out)], [a.n, a.scale, a.shift], grid(a.n));
}
