// The LM head and the target log-prob pick over chunks of rows, so that the [N, V] float32
// logits never exist at once (a 151,936-token vocabulary at 2 x 2 x 512 tokens would hold
// 1.2 GB of logits, and as much again for their gradient). Each chunk's logits live only while
// its log-probs (and optional statistics) are taken; backward recomputes them chunk by chunk.
// DPO / SFT / KTO and the RL methods (GRPO / RLOO / PPO, with the logits divided by the sampling
// temperature first, as TRL) all go through headLogps.
import {
  affine,
  concat,
  gradEnabled,
  logSoftmaxGather,
  narrow,
  noGrad,
  record,
  tensor,
  tidy,
  type Tensor,
} from '../core/index.js';
import type { CausalLM } from '../models/model.js';
import { recomputeVjp } from '../nn/checkpoint.js';

/**
 * Float32 logits one chunk may hold: 256 MiB (441 rows of a 151,936-token vocabulary). Smaller
 * chunks starve the head's matrix products (measured on the 0.5B shape: 110-row chunks ran the
 * head at half the GEMM rate and cost 2.5 s more per step). TSDPO_HEAD_CHUNK_BYTES overrides it
 * (tests run whole suites with tiny chunks).
 */
export const HEAD_CHUNK_BYTES =
  (typeof process !== 'undefined' && Number(process.env?.TSDPO_HEAD_CHUNK_BYTES)) || 256 << 20;

/** Rows per chunk for a vocabulary of V tokens. */
export function headChunkRows(V: number, bytes = HEAD_CHUNK_BYTES): number {
  return Math.max(1, Math.floor(bytes / (4 * V)));
}

/**
 * Largest logits the head has held at once, in bytes (a chunk's logits, their copy divided by the
 * temperature when scaled, and in backward their gradient too), for the memory report; reset it to
 * measure a stretch of training.
 */
export const headMemory = { peakBytes: 0 };

/** copies: (n, V) tensors a chunk holds at once (the logits, their scaled copy, the gradient). */
function noteLogits(rows: number, V: number, copies: number): void {
  headMemory.peakBytes = Math.max(headMemory.peakBytes, rows * V * 4 * copies);
}

/** Per-row statistics of a chunk's logits (n, V) and picked log-probs (n), without gradient: (n, k). */
export type StatsFn = (logits: Tensor, tokenLogps: Tensor) => Tensor;

export interface HeadLogps {
  /** log softmax(head(hidden))[r, targets[r]], 0 where the target is -100: (N), with gradient. */
  logps: Tensor;
  /** stats of every row, (N, k), when asked. */
  stats: Tensor | null;
}

export interface HeadOptions {
  /** Per-row statistics of each chunk's (scaled) logits. */
  stats?: StatsFn;
  /** Rows of logits made at once (default: HEAD_CHUNK_BYTES of them, within the backend's binding limit). */
  chunkRows?: number;
  /**
   * Factor on the logits before the log-softmax: 1 / temperature for the RL methods (TRL divides
   * the logits by the sampling temperature). Default 1 (no extra op).
   */
  scale?: number;
}

/**
 * The picked log-probs of hidden states (N, C) (targets: N host ids, -100 = ignored). Up to
 * `chunkRows` rows this is the plain head (logits kept for backward); beyond, the chunked head.
 */
export function headLogps(model: CausalLM, hidden: Tensor, targets: Int32Array, opts: HeadOptions = {}): HeadLogps {
  const N = hidden.shape[0];
  if (hidden.ndim !== 2 || targets.length !== N)
    throw new Error(`headLogps: hidden ${hidden.describe()} must be (N, C) with N = ${targets.length} targets`);
  const limit = hidden.backend.bindingLimit ?? Infinity; // a chunk's logits fit one binding
  const rows = opts.chunkRows ?? headChunkRows(model.vocabSize, Math.min(HEAD_CHUNK_BYTES, limit));
  const tgt = tensor(targets, [N], 'i32');
  const stats = opts.stats,
    scale = opts.scale ?? 1;
  if (!(scale > 0 && Number.isFinite(scale)))
    throw new Error(`headLogps: scale ${scale} must be a finite number > 0 (1 / temperature: is the temperature 0?)`);
  // (n, V) logits, divided by the temperature when asked (an extra (n, V) tensor).
  const head = (h: Tensor): Tensor => (scale === 1 ? model.head(h) : affine(model.head(h), scale));
  const withGrad = gradEnabled() && hidden.requiresGrad;
  noteLogits(Math.min(N, rows), model.vocabSize, (withGrad ? 2 : 1) + (scale === 1 ? 0 : 1));
  if (N <= rows) {
    const logits = head(hidden); // (N, V)
    const logps = logSoftmaxGather(logits, tgt); // (N)
    return { logps, stats: stats ? tidy(() => stats(logits, logps)) : null };
  }
  const starts = Array.from({ length: Math.ceil(N / rows) }, (_, i) => i * rows);
  const len = (s: number): number => Math.min(rows, N - s);
  const pick =
    (s: number) =>
    (h: Tensor): Tensor =>
      logSoftmaxGather(head(h), narrow(tgt, 0, s, len(s)));
  // Forward without a graph: only the (N) log-probs and the (N, k) statistics stay.
  const [logps, values] = noGrad(() =>
    tidy(() => {
      const parts = starts.map((s) =>
        tidy(() => {
          const logits = head(narrow(hidden, 0, s, len(s))); // (n, V)
          const lp = logSoftmaxGather(logits, narrow(tgt, 0, s, len(s))); // (n)
          return [lp, stats ? stats(logits, lp) : lp];
        }),
      );
      return [
        concat(
          parts.map((p) => p[0]),
          0,
        ),
        stats
          ? concat(
              parts.map((p) => p[1]),
              0,
            )
          : null,
      ];
    }),
  );
  if (!gradEnabled()) return { logps, stats: values };
  // The head's weights get their gradients inside the recomputation (see recomputeVjp).
  const params = [...model.params.values()].filter((p) => p.requiresGrad);
  record(logps, 'chunkedHeadLogps', [hidden, ...params], (dy) => {
    const dh = starts.map((s) =>
      tidy(() => recomputeVjp(pick(s), narrow(hidden, 0, s, len(s)), narrow(dy, 0, s, len(s)), hidden.requiresGrad)),
    );
    const dx = hidden.requiresGrad ? concat(dh as Tensor[], 0) : null;
    for (const d of dh) d?.dispose();
    return [dx, ...params.map(() => null)];
  });
  return { logps, stats: values };
}
