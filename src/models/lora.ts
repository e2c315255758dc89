// LoRA adapters on a loaded model, compatible with PEFT: load an adapter folder, create a new one
// (PEFT's init: A ~ kaiming-uniform, B = 0, so training starts at the base model), save it,
// and merge it into the base weights for export (W' = W + scaling B A, Eq. 3 of arXiv:2106.09685).
import { Rng, keep, matmul, noGrad, tensor, type Tensor } from '../core/index.js';
import { fmt } from '../core/shape.js';
import { isLoraTarget, LORA_DEFAULTS, loraScaling, parseLoraConfig, type LoraConfig } from '../io/peft-config.js';
import { loadPeftAdapter, savePeftAdapter, type PeftAdapter } from '../io/peft.js';
import type { CausalLM } from './model.js';
import { familyOf } from './registry.js';

/** An attached LoRA adapter: its PEFT config and its trainable factors. */
export interface AdapterInfo {
  config: LoraConfig;
  /** Trainable factors, named as in adapter_model.safetensors without the prefix (path.lora_A / path.lora_B). */
  params: { name: string; tensor: Tensor }[];
}

const attached = new WeakMap<CausalLM, AdapterInfo>();

/** The adapter attached to `model`, or null. */
export function adapterOf(model: CausalLM): AdapterInfo | null {
  return attached.get(model) ?? null;
}

function targetPaths(model: CausalLM, config: LoraConfig): string[] {
  const paths = [...model.linears.keys()].filter((p) => isLoraTarget(p, config));
  if (paths.length === 0) {
    throw new Error(
      `lora: target_modules ${JSON.stringify(config.target_modules)} match no linear layer of this ${model.family} model ` +
        `(e.g. ${[...model.linears.keys()].slice(0, 4).join(', ')})`,
    );
  }
  return paths;
}

function attach(
  model: CausalLM,
  config: LoraConfig,
  factors: Map<string, { A: Tensor; B: Tensor; scaling: number }>,
): AdapterInfo {
  if (attached.has(model)) throw new Error('lora: the model already has an adapter');
  const params: AdapterInfo['params'] = [];
  for (const [path, f] of factors) {
    const layer = model.linears.get(path)!;
    const [out, inp] = layer.fanInFanOut ? [layer.weight.shape[1], layer.weight.shape[0]] : layer.weight.shape;
    if (f.A.shape[1] !== inp || f.B.shape[0] !== out || f.A.shape[0] !== f.B.shape[1]) {
      throw new Error(
        `lora: ${path}: A ${fmt(f.A.shape)} / B ${fmt(f.B.shape)} do not fit a layer with in ${inp}, out ${out}`,
      );
    }
    f.A.requiresGrad = true;
    f.B.requiresGrad = true;
    f.A.name = `${path}.lora_A`;
    f.B.name = `${path}.lora_B`;
    layer.lora = f;
    params.push({ name: f.A.name, tensor: f.A }, { name: f.B.name, tensor: f.B });
  }
  const info = { config, params };
  attached.set(model, info);
  return info;
}

/**
 * Attaches a PEFT adapter folder (adapter_config.json + adapter_model.safetensors). Whole tensors of
 * modules_to_save are errors unless their module is in `modulesToSave` (the caller reads those).
 */
export function loadAdapter(model: CausalLM, dir: string, opts: { modulesToSave?: string[] } = {}): AdapterInfo {
  return attachPeftAdapter(model, loadPeftAdapter(dir), dir, opts);
}

/** Attaches an adapter already read (io/peft.ts), e.g. one built from fetched files; errors name `dir`. */
export function attachPeftAdapter(
  model: CausalLM,
  a: PeftAdapter,
  dir: string,
  opts: { modulesToSave?: string[] } = {},
): AdapterInfo {
  const allowed = (name: string): boolean => (opts.modulesToSave ?? []).some((m) => name.startsWith(`${m}.`));
  if ([...a.extraTensors.keys()].some((k) => !allowed(k))) {
    throw new Error(
      `${dir}: modules_to_save tensors (${[...a.extraTensors.keys()].slice(0, 3).join(', ')}) are not supported`,
    );
  }
  const factors = new Map<string, { A: Tensor; B: Tensor; scaling: number }>();
  for (const [path, m] of a.modules) {
    if (!model.linears.has(path))
      throw new Error(`${dir}: adapter targets '${path}', which is not a linear layer of this ${model.family} model`);
    factors.set(path, {
      A: keep(tensor(m.A.toFloat32(), m.A.shape)),
      B: keep(tensor(m.B.toFloat32(), m.B.shape)),
      scaling: m.scaling,
    });
  }
  return attach(model, a.config, factors);
}

/**
 * Restores the attached adapter's factors in place from a PEFT folder (a checkpoint written by
 * saveAdapter): the folder must hold every adapted module, with the same shapes, and no other.
 * Returns the adapter read (its modules_to_save tensors for the caller).
 */
export function restoreAdapter(model: CausalLM, dir: string): PeftAdapter {
  const info = adapterOf(model);
  if (!info) throw new Error(`restoreAdapter: the model has no adapter to restore from ${dir}`);
  const a = loadPeftAdapter(dir);
  const problems: string[] = [];
  for (const [path, m] of a.modules) {
    const l = model.linears.get(path)?.lora;
    if (!l) problems.push(`adapter has ${path}, which this run does not train`);
    else if (fmt(l.A.shape) !== fmt(m.A.shape) || fmt(l.B.shape) !== fmt(m.B.shape)) {
      problems.push(
        `${path}: lora_A ${fmt(m.A.shape)} / lora_B ${fmt(m.B.shape)}, the run's are ${fmt(l.A.shape)} / ${fmt(l.B.shape)}`,
      );
    }
  }
  for (const [path, layer] of model.linears)
    if (layer.lora && !a.modules.has(path)) problems.push(`adapter lacks ${path}, which this run trains`);
  if (problems.length > 0)
    throw new Error(`${dir}: checkpoint adapter does not match this run:\n  ${problems.join('\n  ')}`);
  for (const [path, m] of a.modules) {
    const l = model.linears.get(path)!.lora!;
    l.A.backend.write(l.A.storage, m.A.toFloat32());
    l.B.backend.write(l.B.storage, m.B.toFloat32());
  }
  return a;
}

/** A new adapter's settings, as PEFT's LoraConfig (r, lora_alpha, target_modules, lora_dropout) and its init seed. */
export interface NewAdapterOptions {
  r: number;
  alpha: number;
  /** Module names, 'all-linear', or empty / absent for the family's default (PEFT's for the model_type). */
  targetModules?: string[] | string;
  dropout?: number;
  seed?: number;
}

/** A fresh adapter: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a = sqrt(5)), B = 0. */
export function newAdapter(model: CausalLM, o: NewAdapterOptions): AdapterInfo {
  const targets = o.targetModules?.length ? o.targetModules : familyOf(model.config).loraTargetModules;
  const config = parseLoraConfig(
    {
      ...LORA_DEFAULTS,
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: o.r,
      lora_alpha: o.alpha,
      target_modules: targets,
      lora_dropout: o.dropout ?? 0,
      fan_in_fan_out: model.family === 'gpt2',
    },
    'lora options',
  );
  const rng = new Rng(o.seed ?? 0);
  const factors = new Map<string, { A: Tensor; B: Tensor; scaling: number }>();
  for (const path of targetPaths(model, config)) {
    const layer = model.linears.get(path)!;
    const [out, inp] = layer.fanInFanOut ? [layer.weight.shape[1], layer.weight.shape[0]] : layer.weight.shape;
    const bound = 1 / Math.sqrt(inp);
    const A = Float32Array.from({ length: o.r * inp }, () => (rng.next() * 2 - 1) * bound);
    factors.set(path, {
      A: keep(tensor(A, [o.r, inp])),
      B: keep(tensor(new Float32Array(out * o.r), [out, o.r])),
      scaling: loraScaling(config, path).scaling,
    });
  }
  return attach(model, config, factors);
}

/**
 * Writes the adapter as a PEFT folder; `extra` adds config keys and whole tensors (modules_to_save,
 * e.g. a reward model's score head, by base-model name).
 */
export async function saveAdapter(
  model: CausalLM,
  dir: string,
  baseModel = '',
  extra: { config?: Partial<LoraConfig>; tensors?: Map<string, { shape: number[]; data: Float32Array }> } = {},
): Promise<void> {
  const info = adapterOf(model);
  if (!info) throw new Error('saveAdapter: the model has no adapter');
  const modules = new Map<
    string,
    { A: { shape: number[]; data: Float32Array }; B: { shape: number[]; data: Float32Array } }
  >();
  for (const [path, layer] of model.linears) {
    if (!layer.lora) continue;
    modules.set(path, {
      A: { shape: [...layer.lora.A.shape], data: Float32Array.from(await layer.lora.A.toArray()) },
      B: { shape: [...layer.lora.B.shape], data: Float32Array.from(await layer.lora.B.toArray()) },
    });
  }
  savePeftAdapter(dir, {
    config: { ...info.config, base_model_name_or_path: baseModel, ...extra.config },
    modules,
    extraTensors: extra.tensors,
  });
}

/** Folds every adapter into its base weight (W += scaling B A) and removes the adapter. */
export function mergeAdapter(model: CausalLM): void {
  const info = adapterOf(model);
  if (!info) throw new Error('mergeAdapter: the model has no adapter');
  noGrad(() => {
    for (const layer of model.linears.values()) {
      const l = layer.lora;
      if (!l) continue;
      if (layer.weight.dtype === 'bf16')
        throw new Error(
          `mergeAdapter: ${layer.weight.describe()} is a bfloat16 frozen weight; load the base model as float32 to merge into it`,
        );
      // B A is [out, in]; Conv1D weights are [in, out], so they take (B A)^T = A^T B^T.
      const delta = layer.fanInFanOut ? matmul(l.A, l.B, { transA: true, transB: true }) : matmul(l.B, l.A);
      const w = layer.weight;
      w.backend.kernels.binary({
        op: 'add',
        a: w.storage,
        b: scaled(delta, l.scaling).storage,
        out: w.storage,
        shape: [w.size],
        aStrides: [1],
        bStrides: [1],
      });
      delta.dispose();
      l.A.dispose();
      l.B.dispose();
      layer.lora = null;
    }
  });
  attached.delete(model);
}

function scaled(t: Tensor, s: number): Tensor {
  t.backend.kernels.affine({ x: t.storage, out: t.storage, n: t.size, scale: s, shift: 0 });
  return t;
}
