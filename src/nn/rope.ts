// Rotary position embedding tables: inverse frequencies from config.json (rope_parameters in
// transformers >= 5, rope_theta / rope_scaling before), and the cos / sin tables for given
// positions. Computed on the host in float32 steps, as transformers does.
import type { Backend } from '../core/backend.js';
import { tensor, type Tensor } from '../core/tensor.js';

export interface RopeParams {
  rope_type: string;
  rope_theta: number;
  factor?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
  partial_rotary_factor?: number;
}

const SUPPORTED = ['default', 'linear', 'llama3'];

type Json = Record<string, unknown>;

/**
 * The rope parameters that apply to a layer type ('full_attention' / 'sliding_attention'), read
 * from either config style. `localThetaKey` names the old-style key of a sliding-layer base
 * (Gemma 3: rope_local_base_freq).
 */
export function ropeParams(config: Json, layerType?: string, localThetaKey?: string): RopeParams {
  const where = 'config.json';
  let p: Json | undefined;
  const rp = config.rope_parameters as Json | undefined;
  if (rp && typeof rp === 'object') {
    // Per-layer-type dict (Gemma 3) or one dict for all layers.
    p =
      layerType && rp[layerType] && typeof rp[layerType] === 'object'
        ? (rp[layerType] as Json)
        : 'rope_theta' in rp || 'rope_type' in rp
          ? rp
          : undefined;
    if (p === undefined) throw new Error(`${where}: rope_parameters has no entry for layer type ${layerType}`);
  } else {
    const scaling = (config.rope_scaling ?? null) as Json | null;
    let theta = Number(config.rope_theta ?? 10000);
    if (layerType === 'sliding_attention' && localThetaKey && config[localThetaKey] !== undefined) {
      theta = Number(config[localThetaKey]);
      p = { rope_type: 'default', rope_theta: theta };
    } else {
      p = {
        ...(scaling ?? {}),
        rope_theta: theta,
        rope_type: scaling ? (scaling.rope_type ?? scaling.type ?? 'default') : 'default',
      };
    }
  }
  const type = String(p.rope_type ?? p.type ?? 'default');
  if (!SUPPORTED.includes(type)) {
    throw new Error(`${where}: rope type '${type}' is not supported (supported: ${SUPPORTED.join(', ')})`);
  }
  const out: RopeParams = {
    ...(p as object),
    rope_type: type,
    rope_theta: Number(p.rope_theta ?? config.rope_theta ?? 10000),
  };
  if (config.partial_rotary_factor !== undefined && out.partial_rotary_factor === undefined) {
    out.partial_rotary_factor = Number(config.partial_rotary_factor);
  }
  for (const key of ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'] as const) {
    if (type === 'llama3' && typeof out[key] !== 'number')
      throw new Error(`${where}: rope type llama3 needs rope_scaling.${key}`);
  }
  if (type === 'linear' && typeof out.factor !== 'number')
    throw new Error(`${where}: rope type linear needs rope_scaling.factor`);
  return out;
}

const f = Math.fround;

/** Inverse frequencies [R/2] for head size headDim (R = rotated dims). */
export function invFreq(p: RopeParams, headDim: number): Float64Array {
  const dim = Math.floor(headDim * (p.partial_rotary_factor ?? 1));
  const half = dim >> 1;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(Math.pow(p.rope_theta, f((2 * i) / dim))));
  if (p.rope_type === 'linear') for (let i = 0; i < half; i++) inv[i] = f(inv[i] / p.factor!);
  if (p.rope_type === 'llama3') llama3Scale(inv, p);
  return inv;
}

/** Llama 3.x frequency-dependent scaling (long wavelengths slowed by `factor`, smooth in between). */
function llama3Scale(inv: Float64Array, p: RopeParams): void {
  const factor = p.factor!,
    lo = p.low_freq_factor!,
    hi = p.high_freq_factor!,
    ctx = p.original_max_position_embeddings!;
  const lowWavelen = ctx / lo,
    highWavelen = ctx / hi;
  for (let i = 0; i < inv.length; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen < highWavelen) continue;
    if (wavelen > lowWavelen) {
      inv[i] = f(inv[i] / factor);
      continue;
    }
    const smooth = (ctx / wavelen - lo) / (hi - lo);
    inv[i] = f((1 - smooth) * (inv[i] / factor) + smooth * inv[i]);
  }
}

/** cos and sin [B, T, R/2] for positions [B*T] (row-major). */
export function rotaryTables(
  inv: Float64Array,
  positions: Int32Array,
  B: number,
  T: number,
  backend?: Backend,
): { cos: Tensor; sin: Tensor } {
  const half = inv.length;
  const cos = new Float32Array(B * T * half),
    sin = new Float32Array(B * T * half);
  for (let r = 0; r < B * T; r++) {
    const pos = positions[r];
    for (let i = 0; i < half; i++) {
      const angle = f(inv[i] * pos);
      cos[r * half + i] = Math.cos(angle);
      sin[r * half + i] = Math.sin(angle);
    }
  }
  return { cos: tensor(cos, [B, T, half], 'f32', backend), sin: tensor(sin, [B, T, half], 'f32', backend) };
}
