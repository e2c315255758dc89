// Fused neural-network ops, each one kernel forward and one (or two) backward: softmax,
// log-softmax fused with the target gather, embedding, layer / RMS norm, rotary embedding,
// attention, dropout. Reference compositions of basic ops live in test/core/fused.test.ts.
import { record } from '../autograd.js';
import { fmt } from '../shape.js';
import { zeros, type Tensor } from '../tensor.js';
import { alloc, checked, expectDtype, expectFloat, kernelsOf } from './util.js';

function rowsOf(x: Tensor): [number, number] {
  const D = x.shape[x.ndim - 1];
  return [D === 0 ? 0 : x.size / D, D];
}

function softmaxOp(x: Tensor, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  expectFloat(op, x);
  const [N, D] = rowsOf(x);
  const y = alloc(x.shape, x.dtype, x);
  const k = kernelsOf(op, x);
  k.softmax({ x: x.storage, out: y.storage, N, D, log });
  checked(op, y, [x]);
  return record(y, op, [x], (dy) => {
    const dx = alloc(x.shape, x.dtype, x);
    k.softmaxGrad({ y: y.storage, dy: dy.storage, dx: dx.storage, N, D, log });
    return [dx];
  });
}

/** Softmax over the last axis. */
export const softmax = (x: Tensor): Tensor => softmaxOp(x, false);
/** Log-softmax over the last axis. */
export const logSoftmax = (x: Tensor): Tensor => softmaxOp(x, true);

/**
 * log softmax(logits)[r, targets[r]] for each row r, without forming the [N, V] log-probs:
 * the token log-prob pick. logits [..., V] (float), targets [...] (i32; -100 = ignore -> 0).
 * The backward forms the [N, V] gradient once: dy[r] * (onehot(t) - softmax(logits[r])).
 */
export function logSoftmaxGather(logits: Tensor, targets: Tensor): Tensor {
  expectFloat('logSoftmaxGather', logits, 'logits');
  expectDtype('logSoftmaxGather', targets, 'i32', 'targets');
  const [N, V] = rowsOf(logits);
  if (targets.size !== N || targets.ndim !== logits.ndim - 1 || targets.shape.some((d, i) => d !== logits.shape[i])) {
    throw new Error(
      `logSoftmaxGather: targets ${fmt(targets.shape)} must match logits ${fmt(logits.shape)} without the last dim`,
    );
  }
  const out = alloc(targets.shape, logits.dtype, logits);
  const k = kernelsOf('logSoftmaxGather', logits, targets);
  k.logSoftmaxGather({ logits: logits.storage, targets: targets.storage, out: out.storage, N, V });
  checked('logSoftmaxGather', out, [logits]);
  return record(out, 'logSoftmaxGather', [logits, targets], (dy) => {
    const dl = alloc(logits.shape, logits.dtype, logits);
    k.logSoftmaxGatherGrad({
      logits: logits.storage,
      targets: targets.storage,
      dy: dy.storage,
      dlogits: dl.storage,
      N,
      V,
    });
    return [dl, null];
  });
}

/** Rows of weight [V, D] picked by ids (i32, any shape) -> [...ids.shape, D]. Also a row gather. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  if (weight.dtype === 'bf16') {
    if (weight.requiresGrad)
      throw new Error(
        `embedding: ${weight.describe()} is a bfloat16 frozen weight ` +
          `and cannot be trained (load it as float32: frozen_dtype float32)`,
      );
  } else {
    expectFloat('embedding', weight, 'weight');
  }
  expectDtype('embedding', ids, 'i32', 'ids');
  if (weight.ndim !== 2) throw new Error(`embedding: weight must be [V, D], got ${fmt(weight.shape)}`);
  const [V, D] = weight.shape;
  const N = ids.size;
  const out = alloc([...ids.shape, D], weight.dtype === 'bf16' ? 'f32' : weight.dtype, weight); // (N..., D)
  const k = kernelsOf('embedding', weight, ids);
  k.embedding({ weight: weight.storage, ids: ids.storage, out: out.storage, N, D, V });
  record(out, 'embedding', [weight, ids], (dy) => {
    const dw = zeros(weight.shape, weight.dtype, weight.backend);
    k.embeddingGrad({ dy: dy.storage, ids: ids.storage, dweight: dw.storage, N, D, V });
    return [dw, null];
  });
  // The gradient is a scatter-add: into an existing weight gradient (a tied LM head's) directly.
  if (out.node)
    out.node.vjpInto = (dys, _k, target) =>
      k.embeddingGrad({ dy: dys[0]!.storage, ids: ids.storage, dweight: target.storage, N, D, V });
  return out;
}

function checkNormWeight(op: string, x: Tensor, w: Tensor | null | undefined, what: string, hint: string): void {
  if (w && (w.ndim !== 1 || w.shape[0] !== x.shape[x.ndim - 1])) {
    throw new Error(`${op}: ${what} has shape ${fmt(w.shape)}, input's last dim is ${x.shape[x.ndim - 1]} (${hint})`);
  }
}

/** LayerNorm over the last dim: (x - mean) / sqrt(var + eps) * w + b (biased variance). */
export function layerNorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps: number): Tensor {
  expectFloat('layerNorm', x);
  checkNormWeight('layerNorm', x, w, 'weight', 'hidden_size in config.json?');
  checkNormWeight('layerNorm', x, b, 'bias', 'hidden_size in config.json?');
  const [N, D] = rowsOf(x);
  const out = alloc(x.shape, x.dtype, x),
    mean = alloc([N], x.dtype, x),
    rstd = alloc([N], x.dtype, x);
  const k = kernelsOf('layerNorm', x, w, b);
  k.layerNorm({
    x: x.storage,
    w: w?.storage ?? null,
    b: b?.storage ?? null,
    out: out.storage,
    mean: mean.storage,
    rstd: rstd.storage,
    N,
    D,
    eps,
  });
  checked('layerNorm', out, [x]);
  const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  return record(out, 'layerNorm', inputs, (dy) => {
    const dx = alloc(x.shape, x.dtype, x);
    k.layerNormGrad({
      x: x.storage,
      w: w?.storage ?? null,
      mean: mean.storage,
      rstd: rstd.storage,
      dy: dy.storage,
      dx: dx.storage,
      N,
      D,
    });
    const dw = w?.requiresGrad ? alloc(w.shape, x.dtype, x) : null;
    const db = b?.requiresGrad ? alloc(b.shape, x.dtype, x) : null;
    if (dw || db) {
      k.layerNormWGrad({
        x: x.storage,
        mean: mean.storage,
        rstd: rstd.storage,
        dy: dy.storage,
        dw: dw?.storage ?? null,
        db: db?.storage ?? null,
        N,
        D,
      });
    }
    return [dx, ...(w ? [dw] : []), ...(b ? [db] : [])];
  });
}

/**
 * RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * (offset + w). offset 0 is Llama's,
 * 1 is Gemma's (1 + w) form. w may be null (no scale).
 */
export function rmsNorm(x: Tensor, w: Tensor | null, eps: number, offset = 0): Tensor {
  expectFloat('rmsNorm', x);
  checkNormWeight('rmsNorm', x, w, 'weight', 'hidden_size or head_dim in config.json?');
  const [N, D] = rowsOf(x);
  const out = alloc(x.shape, x.dtype, x),
    rstd = alloc([N], x.dtype, x);
  const k = kernelsOf('rmsNorm', x, w);
  k.rmsNorm({ x: x.storage, w: w?.storage ?? null, out: out.storage, rstd: rstd.storage, N, D, eps, offset });
  checked('rmsNorm', out, [x]);
  return record(out, 'rmsNorm', w ? [x, w] : [x], (dy) => {
    const dx = alloc(x.shape, x.dtype, x);
    k.rmsNormGrad({
      x: x.storage,
      w: w?.storage ?? null,
      rstd: rstd.storage,
      dy: dy.storage,
      dx: dx.storage,
      N,
      D,
      offset,
    });
    if (!w) return [dx];
    let dw: Tensor | null = null;
    if (w.requiresGrad) {
      dw = alloc(w.shape, x.dtype, x);
      k.rmsNormWGrad({ x: x.storage, rstd: rstd.storage, dy: dy.storage, dw: dw.storage, N, D });
    }
    return [dx, dw];
  });
}

/**
 * Rotary position embedding in transformers' rotate-half convention on x [B, T, H, Dh]:
 * cos, sin [B, T, R/2] (constants, from rotaryTables), the first R dims of each head rotate.
 */
export function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  expectFloat('rope', x);
  if (x.ndim !== 4) throw new Error(`rope: x must be [B, T, H, Dh], got ${fmt(x.shape)}`);
  const [B, T, H, Dh] = x.shape;
  const half = cos.shape[cos.ndim - 1],
    R = 2 * half;
  if (cos.size !== B * T * half || sin.size !== cos.size || R > Dh) {
    throw new Error(
      `rope: cos ${fmt(cos.shape)} / sin ${fmt(sin.shape)} do not ` +
        `fit x ${fmt(x.shape)} (want [${B}, ${T}, R/2], R <= ${Dh})`,
    );
  }
  const k = kernelsOf('rope', x, cos, sin);
  const apply = (src: Tensor, sign: number): Tensor => {
    const out = alloc(src.shape, src.dtype, src);
    k.rope({ x: src.storage, cos: cos.storage, sin: sin.storage, out: out.storage, B, T, H, Dh, R, sign });
    return out;
  };
  // The rotation is orthogonal: its transpose (sign -1) is the exact backward.
  return record(checked('rope', apply(x, 1), [x]), 'rope', [x], (dy) => [apply(dy, -1)]);
}

export interface AttentionOptions {
  /** Key padding mask [B, S] (float: 1 keep, 0 pad). */
  mask?: Tensor | null;
  /** Score scale; default 1/sqrt(Dh). */
  scale?: number;
  causal?: boolean;
  /** Sliding window: a query attends to the last `window` positions (0 = unlimited). */
  window?: number;
  /** Logit soft-capping c: s = c tanh(s / c) (0 = off). */
  softcap?: number;
}

/**
 * Scaled dot-product attention with grouped-query heads. q [B, T, H, Dh], k and v [B, S, Hkv, Dh]
 * -> [B, T, H, Dh]. Query i sits at position i + S - T (a KV cache puts T < S).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  expectFloat('attention', q, 'q');
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new Error(
      `attention: q, k, v must be [B, T, H, Dh] / [B, S, Hkv, ` +
        `Dh], got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`,
    );
  }
  const [B, T, H, Dh] = q.shape;
  const [Bk, S, Hkv, Dk] = k.shape;
  if (Bk !== B || Dk !== Dh || v.shape.some((d, i) => d !== k.shape[i]) || H % Hkv !== 0) {
    throw new Error(
      `attention: q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)} ` +
        `do not fit (heads ${H} must be a multiple of kv heads ${Hkv})`,
    );
  }
  const mask = opts.mask ?? null;
  if (mask && (mask.size !== B * S || mask.dtype !== q.dtype)) {
    throw new Error(`attention: mask ${mask.describe()} must be ${q.dtype} [${B}, ${S}]`);
  }
  const args = {
    q: q.storage,
    k: k.storage,
    v: v.storage,
    mask: mask?.storage ?? null,
    B,
    T,
    S,
    H,
    Hkv,
    Dh,
    scale: opts.scale ?? 1 / Math.sqrt(Dh),
    causal: opts.causal ?? true,
    window: opts.window ?? 0,
    softcap: opts.softcap ?? 0,
  };
  const out = alloc(q.shape, q.dtype, q),
    lse = alloc([B, H, T], q.dtype, q);
  const kern = kernelsOf('attention', q, k, v, mask);
  kern.attention({ ...args, out: out.storage, lse: lse.storage });
  checked('attention', out, [q, k, v]);
  return record(out, 'attention', [q, k, v], (dout) => {
    const dq = alloc(q.shape, q.dtype, q),
      dk = alloc(k.shape, k.dtype, k),
      dv = alloc(v.shape, v.dtype, v);
    kern.attentionGrad({
      ...args,
      out: out.storage,
      lse: lse.storage,
      dout: dout.storage,
      dq: dq.storage,
      dk: dk.storage,
      dv: dv.storage,
    });
    return [dq, dk, dv];
  });
}

/** Inverted dropout: zero with probability p, scale the rest by 1/(1-p). Deterministic in seed. */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new Error(`dropout: p must be < 1, got ${p}`);
  const mask = alloc(x.shape, x.dtype, x);
  const k = kernelsOf('dropout', x);
  k.dropoutMask({ out: mask.storage, n: x.size, p, seed: seed >>> 0 });
  const out = alloc(x.shape, x.dtype, x);
  const n = x.size;
  k.binary({ op: 'mul', a: x.storage, b: mask.storage, out: out.storage, shape: [n], aStrides: [1], bStrides: [1] });
  return record(out, 'dropout', [x], (dy) => {
    const dx = alloc(x.shape, x.dtype, x);
    k.binary({ op: 'mul', a: dy.storage, b: mask.storage, out: dx.storage, shape: [n], aStrides: [1], bStrides: [1] });
    return [dx];
  });
}
