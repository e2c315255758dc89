// Completion log-probs of a batch of sequences: log p(token_t | tokens before t) summed over the
// positions that completionMask marks, with the token pick fused into the log-softmax.
import {
  affine,
  concat,
  div,
  embedding,
  exp,
  log,
  matmul,
  max,
  mul,
  narrow,
  noGrad,
  reshape,
  stack,
  sub,
  sum,
  tensor,
  type Tensor,
} from '../core/index.js';
import type { CausalLM } from '../models/model.js';
import type { LoraDropout } from '../nn/linear.js';
import { headLogps } from './chunked-head.js';

/** A padded batch: R sequences of T tokens (host arrays, row-major). */
export interface TokenBatch {
  rows: number;
  T: number;
  inputIds: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array | Float32Array;
  /** 1 for tokens whose log-prob counts (completion incl. EOS). */
  completionMask: Int32Array | Float32Array;
}

export interface LogpOptions {
  /** LoRA adapter on (policy) or off (reference = base model). */
  adapter?: boolean;
  /** Run the LM head only on completion positions (same numbers, less work). */
  headOnCompletion?: boolean;
  /**
   * Also return per-position statistics of the completion positions (TRL's logits/*, entropy, mean_token_accuracy
   * metrics).
   */
  stats?: boolean;
  /**
   * LD-DPO (arXiv:2409.06411, TRL's ld_alpha): rows are pairs (chosen_0..chosen_{P-1}, rejected_0..);
   * completion tokens past the shorter completion of the pair count with this weight instead of 1.
   */
  ldAlpha?: number | null;
  /** Rows of logits the LM head makes at once (default: 256 MiB of them; see chunked-head.ts). */
  headChunkRows?: number;
  /** LoRA dropout of this (training) forward; default none. */
  dropout?: LoraDropout | null;
}

/** Weight of the k-th completion token (0-based) of row r: 1 within the pair's shared length, else ld_alpha. */
export function tokenWeight(
  tokens: ArrayLike<number>,
  ldAlpha: number | null | undefined,
): (r: number, k: number) => number {
  if (ldAlpha === null || ldAlpha === undefined) return () => 1;
  const P = tokens.length / 2;
  return (r, k) => (k < Math.min(tokens[r % P], tokens[(r % P) + P]) ? 1 : ldAlpha);
}

/** Columns of PositionStats.values. */
export const STAT_COLUMNS = 5;

/** Whether a position's target is the argmax, from its p(target) / max p column (1 up to exp's rounding). */
export const targetIsArgmax = (ratio: number): boolean => ratio >= 1 - 1e-5;

/** Statistics of the scored positions, for metrics (no gradient). */
export interface PositionStats {
  /**
   * (N, STAT_COLUMNS): per position [mean logit over the vocabulary, entropy, p(target) / max p, log sum p^2, log
   * p(target)].
   */
  values: Tensor;
  /** (N) the row each position belongs to, or -1 when it is not a completion position. */
  rows: Int32Array;
}

export interface LogpResult {
  /** Summed completion log-probs [R]. */
  seq: Tensor;
  /** Completion tokens per row (host). */
  tokens: Float64Array;
  /** Per-position statistics, when asked. */
  stats?: PositionStats;
}

/**
 * targets[r, t] = ids[r, t + 1] where the next token is a completion token, else -100 (ignored):
 * the log-prob at position t is that of token t + 1 given the prefix.
 */
export function shiftedTargets(b: TokenBatch): { targets: Int32Array; tokens: Float64Array } {
  const { rows, T } = b;
  const targets = new Int32Array(rows * T).fill(-100);
  const tokens = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t + 1 < T; t++) {
      if (b.completionMask[r * T + t + 1]) {
        targets[r * T + t] = b.inputIds[r * T + t + 1];
        tokens[r]++;
      }
    }
  }
  return { targets, tokens };
}

export function sequenceLogps(model: CausalLM, b: TokenBatch, opts: LogpOptions = {}): LogpResult {
  const { rows: R, T } = b;
  const ids = tensor(b.inputIds, [R, T], 'i32');
  const mask = tensor(Float32Array.from(b.attentionMask), [R, T], 'f32');
  const { targets, tokens } = shiftedTargets(b);
  // (R, T, C)
  const hidden = model.body(ids, { attentionMask: mask, adapter: opts.adapter ?? true, dropout: opts.dropout });
  if (!opts.headOnCompletion) {
    const head = headLogps(model, reshape(hidden, [R * T, model.hiddenSize]), targets, {
      stats: opts.stats ? positionStats : undefined,
      chunkRows: opts.headChunkRows,
    });
    const tokenLogps = reshape(head.logps, [R, T]); // (R, T), 0 where ignored
    let seq = sum(tokenLogps, 1); // (R)
    if (opts.ldAlpha !== null && opts.ldAlpha !== undefined) {
      const w = tokenWeight(tokens, opts.ldAlpha),
        weights = new Float32Array(R * T);
      for (let r = 0; r < R; r++)
        for (let t = 0, k = 0; t < T; t++) if (targets[r * T + t] !== -100) weights[r * T + t] = w(r, k++);
      seq = sum(mul(tokenLogps, tensor(weights, [R, T])), 1);
    }
    const stats = opts.stats
      ? { values: head.stats!, rows: Int32Array.from(targets, (t, i) => (t === -100 ? -1 : Math.floor(i / T))) }
      : undefined;
    return { seq, tokens, stats };
  }
  // Gather the M completion positions, run the head on them only, then sum per row with a
  // [R, M] 0/1 matrix (a matmul keeps it differentiable and cheap).
  const picks: number[] = [],
    tgt: number[] = [];
  for (let i = 0; i < R * T; i++) {
    if (targets[i] !== -100) {
      picks.push(i);
      tgt.push(targets[i]);
    }
  }
  const M = picks.length;
  const owner = new Float32Array(R * M);
  const w = tokenWeight(tokens, opts.ldAlpha),
    seen = new Int32Array(R);
  picks.forEach((pos, j) => {
    const r = Math.floor(pos / T);
    owner[r * M + j] = w(r, seen[r]++);
  });
  const h = embedding(reshape(hidden, [R * T, model.hiddenSize]), tensor(Int32Array.from(picks), [M], 'i32')); // (M, C)
  const head = headLogps(model, h, Int32Array.from(tgt), {
    stats: opts.stats ? positionStats : undefined,
    chunkRows: opts.headChunkRows,
  });
  const seq = reshape(matmul(tensor(owner, [R, M]), reshape(head.logps, [M, 1])), [R]);
  const stats = opts.stats
    ? { values: head.stats!, rows: Int32Array.from(picks, (pos) => Math.floor(pos / T)) }
    : undefined;
  return { seq, tokens, stats };
}

/**
 * Per position of logits (N, V) and the target's log-prob (N), without gradient: (N, STAT_COLUMNS) of
 * [mean logit, entropy, p(target) / max p (1 when the target is the argmax), log sum_v p_v^2
 * (WPO's normaliser, Eq. 2 of arXiv:2406.11827), log p(target)].
 */
export function positionStats(logits: Tensor, tokenLogps: Tensor): Tensor {
  return noGrad(() => {
    const V = logits.shape[logits.ndim - 1];
    const m = max(logits, -1, true); // (N, 1)
    const z = sub(logits, m); // (N, V)
    const e = exp(z);
    const s = sum(e, -1, true); // (N, 1)
    const logS = reshape(log(s), [-1]);
    // H = log s - sum(e z) / s (the max cancels)
    const entropy = sub(logS, reshape(div(sum(mul(e, z), -1, true), s), [-1]));
    const ratio = mul(exp(reshape(tokenLogps, [-1])), reshape(s, [-1])); // p(target) * s = p(target) / max p
    const logSumP2 = sub(log(sum(mul(e, e), -1)), affine(logS, 2));
    return stack([affine(sum(logits, -1), 1 / V), entropy, ratio, logSumP2, reshape(tokenLogps, [-1])], 1);
  });
}

export interface PairSequences {
  promptIds: readonly number[];
  chosenIds: readonly number[];
  rejectedIds: readonly number[];
}

/**
 * The same numbers as sequenceLogps on the collated pairs (rows chosen_0..chosen_{P-1},
 * rejected_0..), but each prompt runs through the model once: prompts are left-padded so they
 * end together, their keys / values (with gradient) are shared by the chosen and the rejected
 * continuation, and the first completion token is scored from the prompt's last position.
 */
export function pairLogpsSharedPrompt(
  model: CausalLM,
  pairs: readonly PairSequences[],
  padId: number,
  opts: LogpOptions = {},
): LogpResult {
  const P = pairs.length,
    R = 2 * P,
    C = model.hiddenSize;
  const Tp = Math.max(...pairs.map((p) => p.promptIds.length));
  const comps = [...pairs.map((p) => p.chosenIds), ...pairs.map((p) => p.rejectedIds)];
  const Tc = Math.max(...comps.map((c) => c.length));
  // Prompts, left-padded: (P, Tp); positions count real tokens from 0.
  const pIds = new Int32Array(P * Tp).fill(padId),
    pMask = new Float32Array(P * Tp),
    pPos = new Int32Array(P * Tp).fill(1);
  pairs.forEach((p, i) => {
    const off = Tp - p.promptIds.length;
    p.promptIds.forEach((id, t) => {
      pIds[i * Tp + off + t] = id;
      pMask[i * Tp + off + t] = 1;
      pPos[i * Tp + off + t] = t;
    });
  });
  // Completions, right-padded: (R, Tc), continuing their prompt's positions.
  const cIds = new Int32Array(R * Tc).fill(padId),
    mask = new Float32Array(R * (Tp + Tc)),
    cPos = new Int32Array(R * Tc);
  comps.forEach((c, r) => {
    const p = pairs[r % P];
    mask.set(pMask.subarray((r % P) * Tp, ((r % P) + 1) * Tp), r * (Tp + Tc));
    for (let t = 0; t < Tc; t++) {
      if (t < c.length) {
        cIds[r * Tc + t] = c[t];
        mask[r * (Tp + Tc) + Tp + t] = 1;
      }
      cPos[r * Tc + t] = p.promptIds.length + t;
    }
  });
  const adapter = opts.adapter ?? true,
    dropout = opts.dropout;
  const kv: { k: Tensor; v: Tensor }[] = [];
  const hp = model.body(tensor(pIds, [P, Tp], 'i32'), {
    attentionMask: tensor(pMask, [P, Tp]),
    positions: pPos,
    adapter,
    dropout,
    collect: kv,
  }); // (P, Tp, C)
  const rows = tensor(
    Int32Array.from({ length: R }, (_, r) => r % P),
    [R],
    'i32',
  );
  const hc = model.body(tensor(cIds, [R, Tc], 'i32'), {
    attentionMask: tensor(mask, [R, Tp + Tc]),
    positions: cPos,
    adapter,
    dropout,
    prefix: { kv, rows },
  }); // (R, Tc, C)
  // Rows of [last prompt position (P) ; completion positions (R * Tc)] that predict a completion token.
  const hidden = concat([reshape(narrow(hp, 1, Tp - 1, 1), [P, C]), reshape(hc, [R * Tc, C])], 0);
  const picks: number[] = [],
    tgt: number[] = [],
    owner: number[] = [];
  const tokens = new Float64Array(R);
  comps.forEach((c, r) => {
    for (let t = 0; t < c.length; t++) {
      picks.push(t === 0 ? r % P : P + r * Tc + t - 1);
      tgt.push(c[t]);
      owner.push(r);
    }
    tokens[r] = c.length;
  });
  const M = picks.length;
  const own = new Float32Array(R * M);
  const w = tokenWeight(tokens, opts.ldAlpha),
    seen = new Int32Array(R);
  owner.forEach((r, j) => {
    own[r * M + j] = w(r, seen[r]++);
  });
  const h = embedding(hidden, tensor(Int32Array.from(picks), [M], 'i32')); // (M, C)
  const head = headLogps(model, h, Int32Array.from(tgt), {
    stats: opts.stats ? positionStats : undefined,
    chunkRows: opts.headChunkRows,
  });
  const seq = reshape(matmul(tensor(own, [R, M]), reshape(head.logps, [M, 1])), [R]);
  const stats = opts.stats ? { values: head.stats!, rows: Int32Array.from(owner) } : undefined;
  return { seq, tokens, stats };
}
