// TypeScript side of the fused attention kernels (assembly/attention.ts): checks sizes, picks the
// work split and runs them on the CPU runtime. Tensors are byte addresses in the runtime's memory.
import { SCRATCH_BYTES, type KernelRuntime } from '../runtime.js';

/** Forward arguments; shapes as in docs/kernels.md (`attention`). */
export interface AttentionArgs {
  /** [B, T, H, Dh] */
  q: number;
  /** [B, S, Hkv, Dh] */
  k: number;
  /** [B, S, Hkv, Dh] */
  v: number;
  /** f32 [B, S], 1 keep, 0 padding; 0 (the address) for no padding. */
  mask: number;
  /** [B, T, H, Dh], written. */
  out: number;
  /** [B, H, T], written: logsumexp of each query's allowed scores (-inf without any). */
  lse: number;
  B: number;
  /** Query length; query i sits at position i + S - T. */
  T: number;
  /** Key length. */
  S: number;
  H: number;
  /** Key/value heads; H % Hkv == 0 (query head h uses kv head h / (H / Hkv)). */
  Hkv: number;
  Dh: number;
  /** Score scale, usually 1 / sqrt(Dh) (Gemma: query_pre_attn_scalar ** -0.5). */
  scale: number;
  /** Keys j <= position of the query only. */
  causal: boolean;
  /** Sliding window: keys with position - j < window only; 0 = none. */
  window?: number;
  /** Soft-capping c tanh(s / c) of the scores (Gemma 2's attn_logit_softcapping); 0 = none. */
  softcap?: number;
}

/** Backward arguments: the forward's plus dout (read) and dq, dk, dv (written, same shapes as q, k, v). */
export interface AttentionGradArgs extends AttentionArgs {
  dout: number;
  dq: number;
  dk: number;
  dv: number;
}

/** Below this many multiply-adds (T S Dh per unit, all units) one thread does the job. */
const MIN_PARALLEL_MACS = 1 << 16;

function check(fn: string, a: AttentionArgs, tiles: number, pointers: Record<string, number>): void {
  for (const name of ['B', 'T', 'S', 'H', 'Hkv', 'Dh'] as const) {
    const n = a[name];
    if (!Number.isInteger(n) || n < 1) throw new Error(`${fn}: ${name} = ${n} must be a positive integer`);
  }
  if (a.H % a.Hkv !== 0) {
    throw new Error(
      `${fn}: H = ${a.H} is not a multiple of Hkv = ${a.Hkv} ` +
        '(num_attention_heads / num_key_value_heads in config.json?)',
    );
  }
  for (const [name, p] of Object.entries(pointers)) {
    if (!Number.isInteger(p) || p <= 0 || p % 4 !== 0) {
      throw new Error(`${fn}: ${name} address ${p} is not a 4-byte aligned buffer`);
    }
  }
  if (a.mask !== 0 && (!Number.isInteger(a.mask) || a.mask % 4 !== 0)) {
    throw new Error(`${fn}: mask address ${a.mask} is not 4-byte aligned (0 for none)`);
  }
  const window = a.window ?? 0,
    softcap = a.softcap ?? 0;
  if (!Number.isInteger(window) || window < 0) {
    throw new Error(`${fn}: window = ${window} must be an integer >= 0 (0 for none; sliding_window in config.json)`);
  }
  if (!(softcap >= 0) || !Number.isFinite(softcap)) {
    throw new Error(
      `${fn}: softcap = ${softcap} must be finite and >= 0 (0 for none; attn_logit_softcapping in config.json)`,
    );
  }
  if (!Number.isFinite(a.scale)) throw new Error(`${fn}: scale = ${a.scale} must be finite`);
  // The kernel keeps per thread a key mask [S + 8], 64 row statistics and at least one score row
  // per tile (one tile forward, two backward) in the scratch area (assembly/attention.ts).
  const ldS = Math.ceil(a.S / 4) * 4,
    floats = a.S + 8 + 64 + tiles * ldS;
  if (floats > SCRATCH_BYTES / 4) {
    throw new Error(
      `${fn}: S = ${a.S} keys do not fit the per-thread scratch (${SCRATCH_BYTES} bytes); split the keys`,
    );
  }
}

function sizes(a: AttentionArgs): number[] {
  return [a.B, a.T, a.S, a.H, a.Hkv, a.Dh, a.scale, a.causal ? 1 : 0, a.window ?? 0, a.softcap ?? 0];
}

/** out, lse = attention(q, k, v); one work unit per (batch, query head). */
export function attentionF32(rt: KernelRuntime, a: AttentionArgs): void {
  check('attentionF32', a, 1, { q: a.q, k: a.k, v: a.v, out: a.out, lse: a.lse });
  const n = a.B * a.H,
    macs = n * a.T * a.S * a.Dh;
  rt.run('attention', [a.q, a.k, a.v, a.mask, a.out, a.lse, ...sizes(a)], n, 1, macs < MIN_PARALLEL_MACS ? n + 1 : 1);
}

/** dq, dk, dv of attention given dout (and the forward's out, lse); one work unit per (batch, kv head). */
export function attentionGradF32(rt: KernelRuntime, a: AttentionGradArgs): void {
  check('attentionGradF32', a, 2, {
    q: a.q,
    k: a.k,
    v: a.v,
    out: a.out,
    lse: a.lse,
    dout: a.dout,
    dq: a.dq,
    dk: a.dk,
    dv: a.dv,
  });
  const n = a.B * a.Hkv,
    macs = a.B * a.H * a.T * a.S * a.Dh;
  rt.run(
    'attention_grad',
    [a.q, a.k, a.v, a.mask, a.out, a.lse, a.dout, a.dq, a.dk, a.dv, ...sizes(a)],
    n,
    1,
    macs < MIN_PARALLEL_MACS ? n + 1 : 1,
  );
}
