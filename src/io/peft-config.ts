// PEFT LoRA adapter_config.json: the fields tsdpo uses (HF key names), refusal of the variants it
// cannot run, each module's rank and scaling, and PEFT's rules for which modules get LoRA
// (peft/tuners/tuners_utils.py: check_target_module_exists; peft/utils/other.py: get_pattern_key).
import type { Json } from './hf.js';

export interface LoraConfig {
  peft_type: 'LORA';
  /** Rank of every adapted module unless rank_pattern says otherwise. */
  r: number;
  /** Numerator of the scaling: W' = W + (lora_alpha / r) B A. */
  lora_alpha: number;
  /** Module names matched as `name` or `.name` suffix (list), or one regex matched in full (string);
   *  the string 'all-linear' means every linear layer except the output head. */
  target_modules: string[] | string;
  lora_dropout: number;
  /** Only 'none' is supported: the adapter trains no base-model bias. */
  bias: 'none';
  /** true for GPT-2's Conv1D, whose weight is stored [in, out]; A and B keep their usual shapes. */
  fan_in_fan_out: boolean;
  /** Rank-stabilised LoRA: scaling lora_alpha / sqrt(r) (arXiv:2312.03732). */
  use_rslora: boolean;
  /** Modules trained and saved whole besides the LoRA factors (e.g. ['lm_head']). */
  modules_to_save: string[] | null;
  base_model_name_or_path: string | null;
  task_type: string | null;
  /** Per-module overrides of r / lora_alpha; keys are regexes matched against a module path's tail. */
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  exclude_modules: string[] | string | null;
  /** Only these layer indices get LoRA (with list target_modules); layers_pattern names the layer list. */
  layers_to_transform: number[] | number | null;
  layers_pattern: string[] | string | null;
}

/** The defaults of peft's LoraConfig for the fields above. */
export const LORA_DEFAULTS: Omit<LoraConfig, 'r' | 'lora_alpha' | 'target_modules'> = {
  peft_type: 'LORA',
  lora_dropout: 0,
  bias: 'none',
  fan_in_fan_out: false,
  use_rslora: false,
  modules_to_save: null,
  base_model_name_or_path: null,
  task_type: 'CAUSAL_LM',
  rank_pattern: {},
  alpha_pattern: {},
  exclude_modules: null,
  layers_to_transform: null,
  layers_pattern: null,
};

/** Fields that switch on LoRA variants tsdpo does not implement, with their "off" test. */
const UNSUPPORTED: [key: string, off: (v: unknown) => boolean, what: string][] = [
  ['use_dora', (v) => !v, 'DoRA (use_dora: true)'],
  ['lora_bias', (v) => !v, 'a bias on lora_B (lora_bias: true)'],
  ['use_qalora', (v) => !v, 'QA-LoRA (use_qalora: true)'],
  [
    'target_parameters',
    (v) => v == null || (Array.isArray(v) && v.length === 0),
    'LoRA on parameters (target_parameters)',
  ],
  ['layer_replication', (v) => v == null, 'layer_replication'],
  ['alora_invocation_tokens', (v) => v == null, 'activated LoRA (alora_invocation_tokens)'],
  ['trainable_token_indices', (v) => v == null, 'trainable_token_indices'],
];

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Validates adapter_config.json (`where` names it in errors) and fills peft's defaults. */
export function parseLoraConfig(raw: Json, where: string): LoraConfig {
  const c = { ...LORA_DEFAULTS, task_type: null, ...raw } as Record<string, unknown>;
  if (c.peft_type !== 'LORA') {
    throw new Error(`${where}: peft_type is ${JSON.stringify(c.peft_type)}; only LORA adapters are supported`);
  }
  for (const [key, off, what] of UNSUPPORTED) {
    if (!off(c[key])) throw new Error(`${where}: ${what} is not supported (${key}: ${JSON.stringify(c[key])})`);
  }
  if (c.bias !== 'none') {
    throw new Error(`${where}: bias ${JSON.stringify(c.bias)} is not supported; only 'none' (base biases stay frozen)`);
  }
  if (!Number.isInteger(c.r) || (c.r as number) <= 0)
    throw new Error(`${where}: r must be a positive integer, got ${JSON.stringify(c.r)}`);
  if (typeof c.lora_alpha !== 'number')
    throw new Error(`${where}: lora_alpha must be a number, got ${JSON.stringify(c.lora_alpha)}`);
  if (typeof c.target_modules !== 'string' && !isStrings(c.target_modules)) {
    throw new Error(
      `${where}: target_modules must be a list of module names ` +
        `or a regex string, got ${JSON.stringify(c.target_modules)}`,
    );
  }
  if (c.modules_to_save != null && !isStrings(c.modules_to_save)) {
    throw new Error(
      `${where}: modules_to_save must be a list of module names, got ${JSON.stringify(c.modules_to_save)}`,
    );
  }
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const p = c[key] ?? {};
    if (typeof p !== 'object' || Array.isArray(p) || !Object.values(p).every((v) => typeof v === 'number')) {
      throw new Error(`${where}: ${key} must map module patterns to numbers, got ${JSON.stringify(p)}`);
    }
    c[key] = p;
  }
  return c as unknown as LoraConfig;
}

/** A Python regex compiled for JavaScript (the common subset behaves the same); errors name it. */
function regex(source: string, what: string, given: string): RegExp {
  try {
    return new RegExp(source);
  } catch (e) {
    throw new Error(
      `peft: ${what} ${JSON.stringify(given)} is not a regex JavaScript can run (${(e as Error).message})`,
    );
  }
}

/** PEFT's target_modules rule alone: a list matches a module path equal to a name or ending in
 *  `.name`; a string must match the whole path as a regex. 'all-linear' matches every path but
 *  the output head `lm_head`, so pass it linear modules only. */
export function matchesTarget(modulePath: string, target: readonly string[] | string): boolean {
  if (typeof target === 'string') {
    if (target.toLowerCase() === 'all-linear') return modulePath !== 'lm_head' && !modulePath.endsWith('.lm_head');
    return regex(`^(?:${target})$`, 'target_modules', target).test(modulePath);
  }
  return target.some((t) => modulePath === t || modulePath.endsWith(`.${t}`));
}

/** Whether PEFT puts LoRA on the module `modulePath` of the base model (full rule: exclude_modules,
 *  modules_to_save, target_modules, layers_to_transform / layers_pattern). */
export function isLoraTarget(modulePath: string, config: LoraConfig): boolean {
  const ex = config.exclude_modules;
  if (
    ex &&
    (typeof ex === 'string'
      ? regex(`^(?:${ex})$`, 'exclude_modules', ex).test(modulePath)
      : ex.some((e) => modulePath === e || modulePath.endsWith(`.${e}`)))
  )
    return false;
  if (config.modules_to_save?.some((m) => regex(`^(.*\\.)?${m}($|\\..*)`, 'modules_to_save', m).test(modulePath)))
    return false;
  if (!matchesTarget(modulePath, config.target_modules)) return false;
  const layers = config.layers_to_transform;
  if (typeof config.target_modules === 'string' || layers == null || (Array.isArray(layers) && layers.length === 0))
    return true;
  // The layer index is the first numbered path segment after `.<pattern>.` (any segment if no pattern).
  const patterns =
    config.layers_pattern == null || config.layers_pattern.length === 0
      ? null
      : typeof config.layers_pattern === 'string'
        ? [config.layers_pattern]
        : config.layers_pattern;
  let m: RegExpMatchArray | null = null;
  if (!patterns) m = modulePath.match(/^.*?\.[^.]*\.(\d+)\./);
  else
    for (const p of patterns) if ((m = modulePath.match(regex(`^.*?\\.${p}\\.(\\d+)\\.`, 'layers_pattern', p)))) break;
  if (!m) return false;
  const i = Number(m[1]);
  return typeof layers === 'number' ? i === layers : layers.includes(i);
}

/** PEFT's get_pattern_key: the first pattern key matching the tail of `modulePath`. */
function patternKey(patterns: Record<string, number>, modulePath: string): string | undefined {
  return Object.keys(patterns).find((k) => regex(`^(.*\\.)?(${k})$`, 'rank/alpha pattern', k).test(modulePath));
}

/** Rank, alpha and scaling of one adapted module: alpha / r, or alpha / sqrt(r) with use_rslora. */
export function loraScaling(config: LoraConfig, modulePath?: string): { r: number; alpha: number; scaling: number } {
  const rk = modulePath === undefined ? undefined : patternKey(config.rank_pattern, modulePath);
  const ak = modulePath === undefined ? undefined : patternKey(config.alpha_pattern, modulePath);
  const r = rk === undefined ? config.r : config.rank_pattern[rk];
  const alpha = ak === undefined ? config.lora_alpha : config.alpha_pattern[ak];
  return { r, alpha, scaling: config.use_rslora ? alpha / Math.sqrt(r) : alpha / r };
}
