// A model from config.json + named host tensors, checked tensor by tensor against what the family
// expects: a missing tensor, an unknown extra one, or a wrong shape is an error naming it. No file
// access: browsers build models with this from fetched safetensors (io/safetensors-format.ts).
import { getBackend, type Backend } from '../core/backend.js';
import { keep, type Tensor } from '../core/tensor.js';
import { fmt } from '../core/shape.js';
import type { RawTensor } from '../io/raw-tensor.js';
import type { CausalLM, Json } from './model.js';
import { placeRaw, writeRaw } from './place.js';
import { familyOf } from './registry.js';

export interface BuildOptions {
  /**
   * 'bf16': keep every matrix (embeddings, projections, LM head) as bfloat16, as most checkpoints
   * store them, for a model that is not trained (a reference, a LoRA base); matmuls widen them to
   * f32 and accumulate in f32. Norm weights and biases stay f32. Default 'f32'.
   */
  frozenDtype?: 'f32' | 'bf16';
}

/** Builds a model from config.json + named host tensors (float32 on the backend, or see BuildOptions). */
export function buildModel(
  config: Json,
  raw: Map<string, RawTensor>,
  where: string,
  backend: Backend = getBackend(),
  opts: BuildOptions = {},
): CausalLM {
  const bf16 = opts.frozenDtype === 'bf16';
  if (bf16 && !backend.supports('bf16'))
    throw new Error(
      `${where}: the ${backend.name} backend cannot keep weights in bfloat16 (frozen_dtype float32 works everywhere)`,
    );
  const family = familyOf(config, `${where}/config.json`);
  const spec = family.spec(config);
  const expected = family.shapes(spec);
  const rename = family.sanitize([...raw.keys()], spec);
  const chosen = new Map<string, RawTensor>(); // parameter name -> its tensor in the files, in file order
  const problems: string[] = [];
  for (const [fileName, rt] of raw) {
    const name = rename.get(fileName);
    if (name === null) continue;
    const want = expected.get(name!);
    if (!want) {
      problems.push(
        `unexpected tensor '${fileName}' ${fmt(rt.shape)} (not ` +
          `part of a ${family.modelTypes[0]} model with this config)`,
      );
      continue;
    }
    if (want.length !== rt.shape.length || want.some((d, i) => d !== rt.shape[i])) {
      problems.push(`tensor '${fileName}' has shape ${fmt(rt.shape)}, config.json implies ${fmt(want)}`);
      continue;
    }
    if (!['F32', 'F16', 'BF16', 'F64'].includes(rt.dtype)) {
      problems.push(`tensor '${fileName}' has dtype ${rt.dtype}; only F32, F16, BF16 (and F64) weights are supported`);
      continue;
    }
    chosen.set(name!, rt);
  }
  for (const name of expected.keys()) if (!chosen.has(name)) problems.push(`missing tensor '${name}'`);
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('\n  ');
    throw new Error(
      `${where}: weights do not match config.json:\n  ` +
        `${shown}${problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : ''}`,
    );
  }
  // Largest first: when the backend's memory fills up (the CPU backend's 4 GiB, with a policy and
  // a reference), what moves out to host memory is then small tensors, not a 545 MB embedding
  // whose vacated block stays resident (0.5 GiB of RSS after loading the 0.5B shape twice).
  // The parameters keep the files' order (the optimizer's and the gradient norm's order).
  const placed = new Map<string, Tensor>();
  try {
    for (const [name, rt] of [...chosen].sort((a, b) => b[1].byteLength - a[1].byteLength)) {
      // bf16 bits go in as stored; other dtypes are rounded to nearest even (torch's .to(bfloat16)).
      const t = keep(placeRaw(rt, bf16 && rt.shape.length >= 2 ? 'bf16' : 'f32', backend));
      t.name = name;
      placed.set(name, t);
    }
  } catch (e) {
    for (const t of placed.values()) t.dispose();
    throw e;
  }
  const params = new Map([...chosen.keys()].map((name) => [name, placed.get(name)!]));
  return family.build(spec, config, params);
}

/** Sets requiresGrad on every parameter (full fine-tuning). */
export function trainAll(model: CausalLM): { name: string; tensor: Tensor }[] {
  return [...model.params].map(([name, tensor]) => {
    if (tensor.dtype === 'bf16')
      throw new Error(
        `trainAll: ${tensor.describe()} was loaded as a bfloat16 frozen weight; ` +
          `load the model to train with float32 weights (frozen_dtype float32)`,
      );
    tensor.requiresGrad = true;
    return { name, tensor };
  });
}

/**
 * Writes host tensors into a built model's parameters in place (restoring a checkpoint), with
 * buildModel's checks: a missing tensor, an unknown extra one, a wrong shape or dtype is an error
 * naming it. `ignore` skips file tensors that belong to something else (a reward model's score head).
 */
export function restoreWeights(
  model: CausalLM,
  raw: ReadonlyMap<string, RawTensor>,
  where: string,
  ignore: (name: string) => boolean = () => false,
): void {
  const family = familyOf(model.config, `${where}/config.json`);
  const rename = family.sanitize([...raw.keys()], family.spec(model.config));
  const problems: string[] = [];
  const found = new Map<string, RawTensor>();
  for (const [fileName, rt] of raw) {
    if (ignore(fileName)) continue;
    const name = rename.get(fileName) ?? fileName;
    if (name === null) continue;
    const t = model.params.get(name);
    if (!t)
      problems.push(`unexpected tensor '${fileName}' ${fmt(rt.shape)} (not a parameter of this ${model.family} model)`);
    else if (t.shape.length !== rt.shape.length || t.shape.some((d, i) => d !== rt.shape[i]))
      problems.push(`tensor '${fileName}' has shape ${fmt(rt.shape)}, the model's is ${fmt(t.shape)}`);
    else if (!['F32', 'F16', 'BF16', 'F64'].includes(rt.dtype))
      problems.push(`tensor '${fileName}' has dtype ${rt.dtype}; only F32, F16, BF16 (and F64) weights are supported`);
    else found.set(name, rt);
  }
  for (const name of model.params.keys())
    if (!found.has(name) && !problems.some((p) => p.includes(`'${name}'`))) problems.push(`missing tensor '${name}'`);
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('\n  ');
    throw new Error(
      `${where}: weights do not match the model:\n  ` +
        `${shown}${problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : ''}`,
    );
  }
  for (const [name, rt] of found) {
    writeRaw(model.params.get(name)!, rt);
  }
}
