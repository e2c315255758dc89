// Elementwise ops, each declared once, side by side in the three forms it runs in (as MLX declares
// a primitive's CPU kernel, GPU kernel and vjp together):
// - ref: float64 (the reference kernels, gradient checks, the truth the others are tested against);
// - wasm: AssemblyScript over f32x4 lanes; scripts/build-wasm.mjs generates the kernel files
//   assembly/unary.ts and assembly/binary.ts (op codes, dispatch, loops) from these
//   (cpu/elementwise-codegen.ts);
// - wgsl: WGSL expressions, spliced into the WebGPU kernels (webgpu/kernels/elementwise.ts).
// An op's code (the integer the WebAssembly kernel is called with) is its position in its table.
// Unary ops carry their derivative f' in each form, written to keep full relative accuracy in the
// tails (no 1 - s or 1 - t^2); the vjps of binary ops are compositions of ops (core/ops/elementwise.ts).
// The wasm and wgsl forms may use the helpers of assembly/math.ts, the preambles of
// cpu/elementwise-codegen.ts (expNegAbs, recip1p, the GELU constants), webgpu/wgsl.ts's MATH and
// SPECIAL, and webgpu/kernels/elementwise.ts's POW.
import type { BinaryOp, UnaryOp } from '../core/kernels.js';
import { erfc, sigmoid, softplus } from './ref/special.js';

export interface UnaryDef {
  /** float64 f(x) and f'(x). */
  ref: { f: (x: number) => number; df: (x: number) => number };
  /** AssemblyScript: f(x) and f'(x) dy, as an expression of v128 x (and dy) or a block that returns one. */
  wasm: { f: string; grad: string };
  /** WGSL: f(x) and f'(x), expressions of f32 x, and any helper function the derivative calls. */
  wgsl: { f: string; df: string; helpers?: string };
  /** A few instructions per element (no transcendental): the CPU splits the work only at larger sizes. */
  cheap?: boolean;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT2 = Math.SQRT1_2;
/** The float32 constants of the wasm and wgsl forms (the same digits as the float64 ones above). */
export const F32_CONSTANTS = {
  SQRT_2_OVER_PI: 0.7978845608028654,
  GELU_C: 0.044715,
  INV_SQRT2: 0.7071067811865476,
  INV_SQRT_2PI: 0.3989422804014327,
};
const C = F32_CONSTANTS;

const DEFS = {
  neg: {
    ref: { f: (x) => -x, df: () => -1 },
    wasm: { f: 'f32x4.neg(x)', grad: 'f32x4.neg(dy)' },
    wgsl: { f: '-x', df: '-1.0' },
    cheap: true,
  },
  exp: {
    ref: { f: Math.exp, df: Math.exp },
    wasm: { f: 'exp4(x)', grad: 'f32x4.mul(exp4(x), dy)' },
    wgsl: { f: 'exp_(x)', df: 'exp_(x)' },
  },
  log: {
    ref: { f: Math.log, df: (x) => 1 / x },
    wasm: { f: 'log4(x)', grad: 'f32x4.div(dy, x)' },
    wgsl: { f: 'log_(x)', df: '1.0 / x' },
  },
  tanh: {
    ref: { f: Math.tanh, df: (x) => 1 / Math.cosh(x) ** 2 },
    wasm: {
      f: 'tanh4(x)',
      grad: `// 1 - tanh^2 = 4 s(2x) (1 - s(2x)) = 4 e r^2, e = exp(-2|x|): no cancellation for large |x|
      const e = expNegAbs(f32x4.add(x, x)), r = recip1p(e);
      return f32x4.mul(f32x4.mul(f32x4.mul(e, f32x4.mul(r, r)), splat(4.0)), dy);`,
    },
    wgsl: { f: 'tanh_(x)', df: '4.0 * sigmoid_(2.0 * x) * sigmoid_(-2.0 * x)' },
  },
  sigmoid: {
    ref: { f: sigmoid, df: (x) => sigmoid(x) * sigmoid(-x) },
    wasm: {
      f: 'sigmoid4(x)',
      grad: `// s (1 - s) = e r^2
      const e = expNegAbs(x), r = recip1p(e);
      return f32x4.mul(f32x4.mul(e, f32x4.mul(r, r)), dy);`,
    },
    wgsl: { f: 'sigmoid_(x)', df: 'sigmoid_(x) * sigmoid_(-x)' },
  },
  logsigmoid: {
    ref: { f: (x) => -softplus(-x), df: (x) => sigmoid(-x) },
    wasm: {
      f: `// min(x, 0) - log1p(exp(-|x|))
      const l = log1p4(exp4(f32x4.neg(f32x4.abs(x))));
      return f32x4.sub(f32x4.min(x, splat(0)), l);`,
      grad: 'const e = expNegAbs(x); return f32x4.mul(sigmoidcFrom(x, e, recip1p(e)), dy);',
    },
    wgsl: { f: 'min(x, 0.0) - log1p_(exp_(-abs(x)))', df: 'sigmoid_(-x)' },
  },
  softplus: {
    ref: { f: softplus, df: sigmoid },
    wasm: {
      f: `// max(x, 0) + log1p(exp(-|x|))
      const l = log1p4(exp4(f32x4.neg(f32x4.abs(x))));
      return f32x4.add(f32x4.max(x, splat(0)), l);`,
      grad: 'const e = expNegAbs(x); return f32x4.mul(sigmoidFrom(x, e, recip1p(e)), dy);',
    },
    wgsl: { f: 'max(x, 0.0) + log1p_(exp_(-abs(x)))', df: 'sigmoid_(x)' },
  },
  relu: {
    ref: { f: (x) => (x > 0 ? x : 0), df: (x) => (x > 0 ? 1 : 0) },
    wasm: {
      f: 'v128.and(x, f32x4.gt(x, splat(0)))',
      grad: 'f32x4.mul(v128.and(splat(1.0), f32x4.gt(x, splat(0))), dy)',
    },
    wgsl: { f: 'select(0.0, x, x > 0.0)', df: 'select(0.0, 1.0, x > 0.0)' },
    cheap: true,
  },
  /** 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): no cancellation for x << 0. */
  gelu_tanh: {
    ref: {
      f: (x) => x * sigmoid(2 * SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)),
      df: (x) => {
        // d/dx x s(2u) = s + 2 x s (1 - s) u', u' = sqrt(2/pi) (1 + 3 0.044715 x^2)
        const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x),
          s = sigmoid(2 * u);
        return s + 2 * x * s * sigmoid(-2 * u) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
      },
    },
    wasm: {
      f: `// x / (1 + exp(-2u)): exp(-2u) = inf for x << 0 gives -0, the limit
      const minus2u = f32x4.mul(f32x4.mul(splat(-2 * SQRT_2_OVER_PI), x), madd(f32x4.mul(x, x), splat(GELU_C), splat(1.0)));
      return f32x4.div(x, f32x4.add(splat(1.0), exp4(minus2u)));`,
      grad: `const x2 = f32x4.mul(x, x);
      const u2 = f32x4.mul(f32x4.mul(splat(2 * SQRT_2_OVER_PI), x), madd(x2, splat(GELU_C), splat(1.0)));
      const e = expNegAbs(u2), r = recip1p(e);
      const du = f32x4.mul(splat(2 * SQRT_2_OVER_PI), madd(x2, splat(3 * GELU_C), splat(1.0)));
      return f32x4.mul(madd(f32x4.mul(f32x4.mul(x, e), f32x4.mul(r, r)), du, sigmoidFrom(u2, e, r)), dy);`,
    },
    wgsl: {
      f: `x * sigmoid_(${2 * C.SQRT_2_OVER_PI} * x * fma(x * x, ${C.GELU_C}, 1.0))`,
      df: 'gelu_tanh_grad(x)',
      helpers: /* wgsl */ `
fn gelu_tanh_grad(x: f32) -> f32 {
  let x2 = x * x;
  let u = ${2 * C.SQRT_2_OVER_PI} * x * fma(x2, ${C.GELU_C}, 1.0);
  let s = sigmoid_(u);
  let sc = sigmoid_(-u);
  let du = ${2 * C.SQRT_2_OVER_PI} * fma(x2, ${3 * C.GELU_C}, 1.0);
  return fma(x * s * sc, du, s);
}
`,
    },
  },
  /** x Phi(x) = x erfc(-x / sqrt 2) / 2; d/dx = Phi(x) + x exp(-x^2 / 2) / sqrt(2 pi). */
  gelu_erf: {
    ref: {
      f: (x) => 0.5 * x * erfc(-x * INV_SQRT2),
      df: (x) => 0.5 * erfc(-x * INV_SQRT2) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI),
    },
    wasm: {
      f: 'f32x4.mul(f32x4.mul(splat(0.5), x), erfc4(f32x4.mul(x, splat(-INV_SQRT2))))',
      grad: `const phi = f32x4.mul(splat(0.5), erfc4(f32x4.mul(x, splat(-INV_SQRT2))));
      const pdf = f32x4.mul(exp4(f32x4.mul(f32x4.mul(x, x), splat(-0.5))), splat(INV_SQRT_2PI));
      return f32x4.mul(madd(x, pdf, phi), dy);`,
    },
    wgsl: {
      f: `0.5 * x * erfc_(x * ${-C.INV_SQRT2})`,
      df: `0.5 * erfc_(x * ${-C.INV_SQRT2}) + x * exp_(-0.5 * x * x) * ${C.INV_SQRT_2PI}`,
    },
  },
  /** x sigmoid(x); d/dx = s (1 + x (1 - s)). */
  silu: {
    ref: { f: (x) => x * sigmoid(x), df: (x) => sigmoid(x) * (1 + x * sigmoid(-x)) },
    wasm: {
      f: 'f32x4.div(x, f32x4.add(splat(1.0), exp4(f32x4.neg(x))))',
      grad: `// s + x e r^2
      const e = expNegAbs(x), r = recip1p(e);
      return f32x4.mul(madd(x, f32x4.mul(e, f32x4.mul(r, r)), sigmoidFrom(x, e, r)), dy);`,
    },
    wgsl: { f: 'x * sigmoid_(x)', df: 'sigmoid_(x) * fma(x, sigmoid_(-x), 1.0)' },
  },
  sqrt: {
    ref: { f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x) },
    wasm: { f: 'f32x4.sqrt(x)', grad: 'f32x4.div(f32x4.mul(splat(0.5), dy), f32x4.sqrt(x))' },
    wgsl: { f: 'select(sqrt(x), nan_f32(), x < 0.0)', df: '0.5 / sqrt(x)' },
  },
  rsqrt: {
    ref: { f: (x) => 1 / Math.sqrt(x), df: (x) => -0.5 / (x * Math.sqrt(x)) },
    wasm: {
      f: 'f32x4.div(splat(1.0), f32x4.sqrt(x))',
      grad: 'f32x4.div(f32x4.mul(splat(-0.5), dy), f32x4.mul(x, f32x4.sqrt(x)))',
    },
    wgsl: { f: 'select(1.0 / sqrt(x), nan_f32(), x < 0.0)', df: '-0.5 / (x * sqrt(x))' },
  },
  square: {
    ref: { f: (x) => x * x, df: (x) => 2 * x },
    wasm: { f: 'f32x4.mul(x, x)', grad: 'f32x4.mul(f32x4.add(x, x), dy)' },
    wgsl: { f: 'x * x', df: '2.0 * x' },
    cheap: true,
  },
  abs: {
    ref: { f: Math.abs, df: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0) },
    wasm: {
      f: 'f32x4.abs(x)',
      grad: `// sign(x) dy, 0 at 0
      const sign = v128.or(v128.and(splat(1.0), f32x4.ne(x, splat(0))), v128.and(x, i32x4.splat(0x80000000)));
      return f32x4.mul(sign, dy);`,
    },
    wgsl: { f: 'abs(x)', df: 'sign(x)' },
    cheap: true,
  },
  recip: {
    ref: { f: (x) => 1 / x, df: (x) => -1 / (x * x) },
    wasm: { f: 'f32x4.div(splat(1.0), x)', grad: 'f32x4.div(f32x4.neg(dy), f32x4.mul(x, x))' },
    wgsl: { f: '1.0 / x', df: '-1.0 / (x * x)' },
  },
} satisfies Record<UnaryOp, UnaryDef>;

/** The unary ops, in code order. */
export const UNARY_DEFS: Readonly<Record<UnaryOp, UnaryDef>> = DEFS;

/** Every unary op, in code order. */
export const UNARY_OP_NAMES = Object.keys(UNARY_DEFS) as UnaryOp[];

/** Op codes of the WebAssembly kernels: an op's position in UNARY_DEFS. */
export const UNARY_CODES = Object.fromEntries(UNARY_OP_NAMES.map((op, i) => [op, i])) as Record<UnaryOp, number>;

export interface BinaryDef {
  /** float64 a (op) b. */
  ref: (a: number, b: number) => number;
  /** AssemblyScript: a (op) b over v128 a, b, an expression or a block that returns one. */
  wasm: string;
  /** WGSL: a (op) b, an expression of f32 a, b. */
  wgsl: string;
}

/** max / min propagate NaN like torch.maximum / minimum; comparisons give 0 or 1. */
const BINARY = {
  add: { ref: (a, b) => a + b, wasm: 'f32x4.add(a, b)', wgsl: 'a + b' },
  sub: { ref: (a, b) => a - b, wasm: 'f32x4.sub(a, b)', wgsl: 'a - b' },
  mul: { ref: (a, b) => a * b, wasm: 'f32x4.mul(a, b)', wgsl: 'a * b' },
  div: { ref: (a, b) => a / b, wasm: 'f32x4.div(a, b)', wgsl: 'a / b' },
  max: { ref: (a, b) => Math.max(a, b), wasm: 'f32x4.max(a, b)', wgsl: 'maxn(a, b)' },
  min: { ref: (a, b) => Math.min(a, b), wasm: 'f32x4.min(a, b)', wgsl: 'minn(a, b)' },
  pow: {
    ref: (a, b) => Math.pow(a, b),
    wasm: `// no SIMD form, per lane
      let r = f32x4.splat(Mathf.pow(f32x4.extract_lane(a, 0), f32x4.extract_lane(b, 0)));
      r = f32x4.replace_lane(r, 1, Mathf.pow(f32x4.extract_lane(a, 1), f32x4.extract_lane(b, 1)));
      r = f32x4.replace_lane(r, 2, Mathf.pow(f32x4.extract_lane(a, 2), f32x4.extract_lane(b, 2)));
      return f32x4.replace_lane(r, 3, Mathf.pow(f32x4.extract_lane(a, 3), f32x4.extract_lane(b, 3)));`,
    wgsl: 'pow_(a, b)',
  },
  gt: { ref: (a, b) => (a > b ? 1 : 0), wasm: 'v128.and(f32x4.gt(a, b), splat(1.0))', wgsl: 'select(0.0, 1.0, a > b)' },
  ge: {
    ref: (a, b) => (a >= b ? 1 : 0),
    wasm: 'v128.and(f32x4.ge(a, b), splat(1.0))',
    wgsl: 'select(0.0, 1.0, a >= b)',
  },
  eq: {
    ref: (a, b) => (a === b ? 1 : 0),
    wasm: 'v128.and(f32x4.eq(a, b), splat(1.0))',
    wgsl: 'select(0.0, 1.0, a == b)',
  },
} satisfies Record<BinaryOp, BinaryDef>;

/** The binary ops, in code order. */
export const BINARY_DEFS: Readonly<Record<BinaryOp, BinaryDef>> = BINARY;

/** Every binary op, in code order. */
export const BINARY_OP_NAMES = Object.keys(BINARY_DEFS) as BinaryOp[];

/** Op codes of the WebAssembly binary kernel: an op's position in BINARY_DEFS. */
export const BINARY_CODES = Object.fromEntries(BINARY_OP_NAMES.map((op, i) => [op, i])) as Record<BinaryOp, number>;
