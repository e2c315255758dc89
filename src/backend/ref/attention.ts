// Fused self-attention (reference kernels): scores, masks, softmax and P V in one op, and its
// backward by recomputation. Semantics follow transformers' eager attention (GPT-2, Llama,
// Mistral, Qwen2/3, Gemma): see docs/kernels.md, `attention` and `attention_grad`.
//
// Shapes: q [B, T, H, Dh]; k, v [B, S, Hkv, Dh]; mask [B, S] (1 keep, 0 padding) or null;
// out [B, T, H, Dh]; lse [B, H, T]. Query head h reads kv head h / (H / Hkv) (grouped-query).
// Query i sits at absolute position pos = i + S - T (T < S: the last T positions, as with a KV cache).
import type { F } from './types.js';

/** Whether query i may attend to key j (causality and sliding window; padding is checked apart). */
export function keyAllowed(i: number, j: number, T: number, S: number, causal: boolean, window: number): boolean {
  const pos = i + S - T;
  if (causal && j > pos) return false;
  // transformers' sliding window keeps keys with pos - j < window.
  if (window > 0 && pos - j >= window) return false;
  return true;
}

/** Score of one (query, key) pair: s = scale q.k, soft-capped as c tanh(s / c) when c > 0 (Gemma 2). */
function score(q: F, qo: number, k: F, ko: number, Dh: number, scale: number, softcap: number): number {
  let dot = 0;
  for (let d = 0; d < Dh; d++) dot += q[qo + d] * k[ko + d];
  const s = scale * dot;
  return softcap > 0 ? softcap * Math.tanh(s / softcap) : s;
}

/**
 * out = softmax(mask(s)) v per query row, and lse = logsumexp of the allowed scores.
 * A query with no allowed key gets out 0 and lse -inf.
 */
export function attention(
  q: F,
  k: F,
  v: F,
  mask: F | null,
  out: F,
  lse: F,
  B: number,
  T: number,
  S: number,
  H: number,
  Hkv: number,
  Dh: number,
  scale: number,
  causal: boolean,
  window = 0,
  softcap = 0,
): void {
  const group = H / Hkv;
  const s = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const qo = ((b * T + i) * H + h) * Dh,
          oo = qo;
        let m = -Infinity;
        for (let j = 0; j < S; j++) {
          const keep = keyAllowed(i, j, T, S, causal, window) && (mask === null || mask[b * S + j] !== 0);
          s[j] = keep ? score(q, qo, k, ((b * S + j) * Hkv + g) * Dh, Dh, scale, softcap) : -Infinity;
          m = Math.max(m, s[j]);
        }
        for (let d = 0; d < Dh; d++) out[oo + d] = 0;
        if (m === -Infinity) {
          lse[(b * H + h) * T + i] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < S; j++) sum += Math.exp(s[j] - m);
        const l = m + Math.log(sum);
        lse[(b * H + h) * T + i] = l;
        for (let j = 0; j < S; j++) {
          if (s[j] === -Infinity) continue;
          const p = Math.exp(s[j] - l),
            vo = ((b * S + j) * Hkv + g) * Dh;
          for (let d = 0; d < Dh; d++) out[oo + d] += p * v[vo + d];
        }
      }
    }
  }
}

/**
 * Backward of `attention` given dout: recomputes P = exp(s - lse), then
 *   D_i = sum_d dout_i out_i,  dS_ij = P_ij (dout_i . v_j - D_i) (times 1 - tanh^2(s_raw / c) when capped),
 *   dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i,  dv_j = sum_i P_ij dout_i.
 * dq, dk, dv are overwritten. Rows with lse = -inf (no allowed key) contribute nothing.
 */
export function attentionGrad(
  q: F,
  k: F,
  v: F,
  mask: F | null,
  out: F,
  lse: F,
  dout: F,
  dq: F,
  dk: F,
  dv: F,
  B: number,
  T: number,
  S: number,
  H: number,
  Hkv: number,
  Dh: number,
  scale: number,
  causal: boolean,
  window = 0,
  softcap = 0,
): void {
  dq.fill(0, 0, B * T * H * Dh);
  dk.fill(0, 0, B * S * Hkv * Dh);
  dv.fill(0, 0, B * S * Hkv * Dh);
  const group = H / Hkv;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const l = lse[(b * H + h) * T + i];
        if (l === -Infinity) continue;
        const qo = ((b * T + i) * H + h) * Dh;
        let D = 0;
        for (let d = 0; d < Dh; d++) D += dout[qo + d] * out[qo + d];
        for (let j = 0; j < S; j++) {
          if (!keyAllowed(i, j, T, S, causal, window) || (mask !== null && mask[b * S + j] === 0)) continue;
          const ko = ((b * S + j) * Hkv + g) * Dh;
          const raw = score(q, qo, k, ko, Dh, scale, 0);
          const capped = softcap > 0 ? softcap * Math.tanh(raw / softcap) : raw;
          const p = Math.exp(capped - l);
          let dp = 0;
          for (let d = 0; d < Dh; d++) dp += dout[qo + d] * v[ko + d];
          let ds = p * (dp - D);
          if (softcap > 0) ds *= 1 - Math.tanh(raw / softcap) ** 2;
          for (let d = 0; d < Dh; d++) {
            dv[ko + d] += p * dout[qo + d];
            dq[qo + d] += scale * ds * k[ko + d];
            dk[ko + d] += scale * ds * q[qo + d];
          }
        }
      }
    }
  }
}
