// The kernels every backend implements, with their arguments (docs/kernels.md has the
// semantics). The table type makes a kernel a backend forgets a compile error.
import type { Storage } from './backend.js';

type B = Storage;
export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'tanh'
  | 'sigmoid'
  | 'logsigmoid'
  | 'softplus'
  | 'relu'
  | 'gelu_tanh'
  | 'gelu_erf'
  | 'silu'
  | 'sqrt'
  | 'rsqrt'
  | 'square'
  | 'abs'
  | 'recip';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'pow' | 'gt' | 'ge' | 'eq';

export interface KernelArgs {
  fill: { out: B; value: number };
  /** dst[dstOffset + idx . dstStrides] = src[srcOffset + idx . srcStrides] for idx over shape. */
  copy: {
    src: B;
    dst: B;
    shape: number[];
    srcStrides: number[];
    dstStrides: number[];
    srcOffset: number;
    dstOffset: number;
  };
  /** Converts between dtypes (i32 <-> f32/f64, f32 <-> f64); float -> int truncates. */
  cast: { src: B; dst: B; n: number };
  unary: { op: UnaryOp; x: B; out: B; n: number };
  unaryGrad: { op: UnaryOp; x: B; dy: B; dx: B; n: number };
  binary: { op: BinaryOp; a: B; b: B; out: B; shape: number[]; aStrides: number[]; bStrides: number[] };
  where: {
    cond: B;
    a: B;
    b: B;
    out: B;
    shape: number[];
    condStrides: number[];
    aStrides: number[];
    bStrides: number[];
  };
  affine: { x: B; out: B; n: number; scale: number; shift: number };
  /** Reduces the middle axis of an [outer, red, inner] view. */
  reduce: { op: 'sum' | 'max'; x: B; out: B; outer: number; red: number; inner: number };
  /** C[i] (+)= op(A[i]) op(B[i]) for i < batch; A is [M, K] (or [K, M] when transA), B [K, N] (or [N, K]). */
  matmul: {
    a: B;
    b: B;
    c: B;
    M: number;
    N: number;
    K: number;
    transA: boolean;
    transB: boolean;
    accumulate: boolean;
    batch: number;
    strideA: number;
    strideB: number;
    strideC: number;
  };
  softmax: { x: B; out: B; N: number; D: number; log: boolean };
  softmaxGrad: { y: B; dy: B; dx: B; N: number; D: number; log: boolean };
  logSoftmaxGather: { logits: B; targets: B; out: B; N: number; V: number };
  logSoftmaxGatherGrad: { logits: B; targets: B; dy: B; dlogits: B; N: number; V: number };
  embedding: { weight: B; ids: B; out: B; N: number; D: number; V: number };
  embeddingGrad: { dy: B; ids: B; dweight: B; N: number; D: number; V: number };
  layerNorm: { x: B; w: B | null; b: B | null; out: B; mean: B; rstd: B; N: number; D: number; eps: number };
  layerNormGrad: { x: B; w: B | null; mean: B; rstd: B; dy: B; dx: B; N: number; D: number };
  layerNormWGrad: { x: B; mean: B; rstd: B; dy: B; dw: B | null; db: B | null; N: number; D: number };
  rmsNorm: { x: B; w: B | null; out: B; rstd: B; N: number; D: number; eps: number; offset: number };
  rmsNormGrad: { x: B; w: B | null; rstd: B; dy: B; dx: B; N: number; D: number; offset: number };
  rmsNormWGrad: { x: B; rstd: B; dy: B; dw: B; N: number; D: number };
  rope: { x: B; cos: B; sin: B; out: B; B: number; T: number; H: number; Dh: number; R: number; sign: number };
  attention: AttentionArgs & { out: B; lse: B };
  attentionGrad: AttentionArgs & { out: B; lse: B; dout: B; dq: B; dk: B; dv: B };
  adamw: {
    p: B;
    g: B;
    m: B;
    v: B;
    n: number;
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    bc1: number;
    bc2: number;
  };
  rmsprop: { p: B; g: B; sq: B; n: number; lr: number; alpha: number; eps: number; weightDecay: number };
  sgd: { p: B; g: B; buf: B | null; n: number; lr: number; momentum: number; weightDecay: number };
  /** out[index] += sum of squares of x (out is f32 or f64). */
  sumSquares: { x: B; n: number; out: B; index: number };
  dropoutMask: { out: B; n: number; p: number; seed: number };
}

export interface AttentionArgs {
  q: B;
  k: B;
  v: B;
  mask: B | null;
  B: number;
  T: number;
  S: number;
  H: number;
  Hkv: number;
  Dh: number;
  scale: number;
  causal: boolean;
  window: number;
  softcap: number;
}

export type KernelName = keyof KernelArgs;
export type KernelTable = { [K in KernelName]: (args: KernelArgs[K]) => void };
