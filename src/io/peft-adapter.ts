// PEFT LoRA adapters without file access: the layout of adapter_model.safetensors (keys
// `base_model.model.<module path>.lora_A.weight` [r, in] and `...lora_B.weight` [out, r], plus whole
// tensors of modules_to_save) and its checks against adapter_config.json. io/peft.ts reads and writes
// the folders; browsers build adapters from fetched files with peftAdapterFrom.
import type { DType, TypedData } from './dtype.js';
import type { Json } from './hf.js';
import { isLoraTarget, LORA_DEFAULTS, loraScaling, parseLoraConfig, type LoraConfig } from './peft-config.js';
import type { RawTensor } from './raw-tensor.js';
export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const PREFIX = 'base_model.model.';

export interface LoraModule {
  /** Module path in the base model, e.g. model.layers.0.self_attn.q_proj. */
  path: string;
  /** [r, in] */
  A: RawTensor;
  /** [out, r] */
  B: RawTensor;
  r: number;
  alpha: number;
  /** Factor of B A for this module (alpha / r, or alpha / sqrt(r) with use_rslora). */
  scaling: number;
}

export interface PeftAdapter {
  dir: string;
  config: LoraConfig;
  /** adapter_config.json as read, all keys (also those tsdpo ignores, such as peft_version). */
  rawConfig: Json;
  /** The config's scaling, lora_alpha / r (or / sqrt(r) with use_rslora); rank_pattern and
   *  alpha_pattern can change it per module (see LoraModule.scaling). */
  scaling: number;
  /** LoRA factors by base-model module path. */
  modules: Map<string, LoraModule>;
  /** Whole tensors saved beside the factors (modules_to_save, resized embeddings) by base-model name. */
  extraTensors: Map<string, RawTensor>;
}

/** One factor to save: float32 data by default. */
export interface LoraWeight {
  shape: readonly number[];
  data: TypedData;
  dtype?: DType;
}

export interface PeftAdapterToSave {
  /** Merged over peft's defaults (task_type CAUSAL_LM); r, lora_alpha and target_modules are required. */
  config: Partial<LoraConfig> & Pick<LoraConfig, 'r' | 'lora_alpha' | 'target_modules'>;
  /** More adapter_config.json keys, written as given unless `config` sets them (e.g. a loaded rawConfig). */
  extraConfig?: Json;
  modules: ReadonlyMap<string, { A: LoraWeight; B: LoraWeight }>;
  extraTensors?: ReadonlyMap<string, LoraWeight>;
}

/** What peft writes besides LoraConfig's fields, for a plain trained adapter. */
export const WRITTEN_DEFAULTS: Json = {
  ...LORA_DEFAULTS,
  use_dora: false,
  inference_mode: true,
  init_lora_weights: true,
  revision: null,
};

const FACTOR = /^(.+)\.lora_([AB])\.weight$/;

/**
 * An adapter from adapter_config.json (parsed) and the tensors of adapter_model.safetensors, with
 * the checks of loadPeftAdapter. No file access: browsers build adapters from fetched files with it.
 */
export function peftAdapterFrom(
  dir: string,
  rawConfig: Json,
  tensors: ReadonlyMap<string, RawTensor>,
  where: string,
): PeftAdapter {
  const config = parseLoraConfig(rawConfig, where);
  const factors = new Map<string, { A?: RawTensor; B?: RawTensor }>();
  const extraTensors = new Map<string, RawTensor>();
  for (const [key, t] of tensors) {
    if (!key.startsWith(PREFIX)) throw new Error(`${where}: key '${key}' does not start with '${PREFIX}'`);
    const name = key.slice(PREFIX.length),
      m = FACTOR.exec(name);
    if (m) {
      const f = factors.get(m[1]) ?? {};
      f[m[2] as 'A' | 'B'] = t;
      factors.set(m[1], f);
    } else if (/\.lora_|\.lora_magnitude_vector/.test(name)) {
      throw new Error(
        `${where}: key '${key}' is a LoRA variant tsdpo does not support ` +
          `(only <module>.lora_A.weight / lora_B.weight, saved without the adapter name)`,
      );
    } else {
      extraTensors.set(name, t);
    }
  }
  const modules = new Map<string, LoraModule>();
  for (const [p, { A, B }] of [...factors].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!A || !B) throw new Error(`${where}: module ${p} has lora_${A ? 'A' : 'B'} but no lora_${A ? 'B' : 'A'}`);
    modules.set(p, { path: p, A, B, ...checkModule(p, A.shape, B.shape, config, where) });
  }
  return { dir, config, rawConfig, scaling: loraScaling(config).scaling, modules, extraTensors };
}

/** Checks that a module is targeted by the config and that A [r, in], B [out, r] fit its rank. */
export function checkModule(p: string, a: readonly number[], b: readonly number[], config: LoraConfig, where: string) {
  if (!isLoraTarget(p, config)) {
    throw new Error(
      `${where}: has LoRA factors for ${p}, which the config's target_modules ` +
        `${JSON.stringify(config.target_modules)} does not select`,
    );
  }
  const s = loraScaling(config, p);
  if (a.length !== 2 || b.length !== 2 || a[0] !== s.r || b[1] !== s.r) {
    throw new Error(
      `${where}: module ${p} has lora_A [${a.join(', ')}] and lora_B [${b.join(', ')}]; ` +
        `expected [r, in] and [out, r] with r = ${s.r} (r / rank_pattern in ${ADAPTER_CONFIG})`,
    );
  }
  return s;
}

/** Checks an adapter against its base model's weights: `<path>.weight` must be [out, in]
 *  ([in, out] with fan_in_fan_out) for every adapted module. */
export function checkAdapterAgainstBase(
  adapter: PeftAdapter,
  base: ReadonlyMap<string, { shape: readonly number[] }>,
): void {
  for (const m of adapter.modules.values()) {
    const w = base.get(`${m.path}.weight`);
    const out = m.B.shape[0],
      inp = m.A.shape[1];
    const want = adapter.config.fan_in_fan_out ? [inp, out] : [out, inp];
    if (!w) throw new Error(`checkAdapterAgainstBase: the base model has no ${m.path}.weight (wrong base model?)`);
    if (w.shape.length !== 2 || w.shape[0] !== want[0] || w.shape[1] !== want[1]) {
      throw new Error(
        `checkAdapterAgainstBase: ${m.path}.weight is [${w.shape.join(', ')}] but the adapter's ` +
          `B A is [${want.join(', ')}]${adapter.config.fan_in_fan_out ? ' (fan_in_fan_out)' : ''} (wrong base model?)`,
      );
    }
  }
}
