// LoRA adapters on a model in memory, compatible with PEFT: attach one already read, create a new
// one (PEFT's init: A ~ kaiming-uniform, B = 0, so training starts at the base model), and merge it
// into the base weights for export (W' = W + scaling B A, Eq. 3 of arXiv:2106.09685). No file access:
// models/lora.ts adds loading and saving adapter folders.
import { Rng, keep, matmul, noGrad, tensor, type Tensor } from '../core/index.js';
import { fmt } from '../core/shape.js';
import { isLoraTarget, LORA_DEFAULTS, loraScaling, parseLoraConfig, type LoraConfig } from '../io/peft-config.js';
import type { PeftAdapter } from '../io/peft-adapter.js';
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
      `lora: target_modules ${JSON.stringify(config.target_modules)} ` +
        `match no linear layer of this ${model.family} model ` +
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
          `mergeAdapter: ${layer.weight.describe()} is a bfloat16 frozen ` +
            `weight; load the base model as float32 to merge into it`,
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
