// Text generation with a KV cache: batched prompts (left-padded, as transformers does for
// decoder-only models), greedy or sampled (temperature -> top-k -> top-p, as transformers'
// logits warpers), max_new_tokens, stopping at EOS.
import { narrow, noGrad, reshape, tensor, tidy } from '../core/index.js';
import { Rng } from '../core/random.js';
import type { CausalLM } from '../models/model.js';

export interface GenerateOptions {
  maxNewTokens: number;
  /** false: greedy (argmax). */
  doSample?: boolean;
  temperature?: number;
  /** Keep the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). */
  topP?: number;
  /** Stop a row at any of these ids (it is kept in the output). */
  eosIds?: number[];
  /** Fills finished rows and left padding. */
  padId?: number;
  rng?: Rng;
  /** One generator per row (then `rng` is unused): a row's tokens do not depend on the other rows of the batch. */
  rowRngs?: readonly Rng[];
  /** LoRA adapter on (default) or off. */
  adapter?: boolean;
}

export interface Generation {
  /** New tokens per row (EOS included when reached). */
  tokens: number[][];
  /** Log-prob of each new token under the sampling distribution's model (before warping). */
  logps: number[][];
}

/** Generates continuations of each prompt (token ids). */
export async function generate(model: CausalLM, prompts: number[][], o: GenerateOptions): Promise<Generation> {
  const B = prompts.length;
  if (B === 0) return { tokens: [], logps: [] };
  if (prompts.some((p) => p.length === 0)) throw new Error('generate: empty prompt (give at least a BOS token)');
  const pad = o.padId ?? 0,
    eos = new Set(o.eosIds ?? []);
  const rng = o.rng ?? new Rng(0);
  const L = Math.max(...prompts.map((p) => p.length));
  // Left padding: every prompt ends at column L - 1, so the next token is predicted for all rows at once.
  const ids = new Int32Array(B * L).fill(pad),
    mask: number[][] = [];
  const positions = new Int32Array(B * L);
  prompts.forEach((p, b) => {
    const off = L - p.length;
    mask.push([...new Array(off).fill(0), ...new Array(p.length).fill(1)]);
    for (let t = 0; t < L; t++) {
      if (t >= off) ids[b * L + t] = p[t - off];
      positions[b * L + t] = t >= off ? t - off : 1; // transformers: cumsum(mask) - 1, padding set to 1
    }
  });
  const next = Int32Array.from(prompts, (p) => p.length); // position of the next token per row
  const cache = model.newCache();
  const tokens: number[][] = prompts.map(() => []),
    logps: number[][] = prompts.map(() => []);
  const done = new Array<boolean>(B).fill(false);
  try {
    let stepIds = ids,
      stepPos = positions,
      T = L;
    for (let step = 0; step < o.maxNewTokens && !done.every(Boolean); step++) {
      const flatMask = Float32Array.from(mask.flat());
      const out = noGrad(() =>
        tidy(() => {
          const hidden = model.body(tensor(stepIds, [B, T], 'i32'), {
            attentionMask: tensor(flatMask, [B, mask[0].length]),
            positions: stepPos,
            cache,
            adapter: o.adapter,
          });
          const last = reshape(narrow(hidden, 1, T - 1, 1), [B, model.hiddenSize]);
          return model.head(last); // (B, V)
        }),
      );
      const logits = await out.toArray();
      out.dispose(); // the one tensor tidy hands back: freed here, not left to the caller's scope
      const V = logits.length / B;
      const chosen = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        const row = logits.subarray(b * V, (b + 1) * V) as Float32Array;
        if (done[b]) {
          chosen[b] = pad;
          continue;
        }
        const { id, logp } = pickToken(row, o, o.rowRngs?.[b] ?? rng);
        chosen[b] = id;
        tokens[b].push(id);
        logps[b].push(logp);
        if (eos.has(id)) done[b] = true;
      }
      for (const m of mask) m.push(1);
      stepIds = chosen;
      stepPos = Int32Array.from(next);
      for (let b = 0; b < B; b++) next[b]++;
      T = 1;
    }
  } finally {
    for (const t of [...cache.k, ...cache.v]) t?.dispose();
  }
  return { tokens, logps };
}

/** log sum exp of a row (float64), for the log-prob of the picked token: logit - lse. */
function logSumExp(row: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return max + Math.log(sum);
}

/** One token from a row of logits; logp is its log-prob under the unwarped model. */
export function pickToken(row: Float32Array, o: GenerateOptions, rng: Rng): { id: number; logp: number } {
  if (!o.doSample) {
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
    return { id: best, logp: row[best] - logSumExp(row) };
  }
  const temp = o.temperature ?? 1;
  if (!(temp > 0)) throw new Error(`generate: temperature must be > 0, got ${temp}`);
  if (!(o.topK && o.topK > 0 && o.topK < row.length) && (o.topP ?? 1) >= 1) {
    // Plain sampling (no top-k / top-p cut): inverse CDF in vocabulary order, no sort. At
    // temperature 1 the weights' sum also gives the log-normaliser (one pass of exp).
    let max = -Infinity;
    for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
    const w = new Float64Array(row.length);
    let total = 0;
    for (let i = 0; i < row.length; i++) total += w[i] = Math.exp((row[i] - max) / temp);
    const lse = temp === 1 ? max + Math.log(total) : logSumExp(row);
    let u = rng.next() * total;
    for (let i = 0; i < row.length; i++) {
      u -= w[i];
      if (u <= 0 && w[i] > 0) return { id: i, logp: row[i] - lse };
    }
    let last = row.length - 1;
    while (last > 0 && w[last] === 0) last--;
    return { id: last, logp: row[last] - lse };
  }
  const lse = logSumExp(row);
  // Candidates sorted by logit, then cut by top-k and top-p on the tempered distribution.
  let order = Array.from(row.keys()).sort((a, b) => row[b] - row[a]);
  if (o.topK && o.topK > 0) order = order.slice(0, o.topK);
  const scaled = order.map((i) => row[i] / temp);
  const max = scaled[0];
  const probs = scaled.map((s) => Math.exp(s - max));
  let total = probs.reduce((a, b) => a + b, 0);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    let acc = 0,
      keep = 0;
    while (keep < probs.length && acc / total < topP) acc += probs[keep++];
    probs.length = Math.max(1, keep);
    order = order.slice(0, probs.length);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let u = rng.next() * total;
  for (let j = 0; j < probs.length; j++) {
    u -= probs[j];
    if (u <= 0) return { id: order[j], logp: row[order[j]] - lse };
  }
  const id = order[probs.length - 1];
  return { id, logp: row[id] - lse };
}
