// Loading and saving models as Hugging Face folders on disk (Node); building a model from tensors
// in memory, which browsers use too, is build.ts.
import type { Backend } from '../core/backend.js';
import type { TypedArray } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import { loadHfFolder, saveHfFolder, type HfFolder } from '../io/hf.js';
import { buildModel, restoreWeights, type BuildOptions } from './build.js';
import type { CausalLM, Json } from './model.js';

export { buildModel, restoreWeights, trainAll } from './build.js';

export interface LoadOptions extends BuildOptions {
  backend?: Backend;
}

/**
 * Loads a local Hugging Face model folder (config.json + safetensors, sharded or not). Tensors are
 * read lazily, one at a time, straight into the backend, so loading needs little more host memory
 * than the largest tensor.
 */
export function loadModel(dir: string, opts: LoadOptions = {}): CausalLM {
  const folder: HfFolder = loadHfFolder(dir, { lazy: true });
  return buildModel(folder.config, folder.tensors, dir, opts.backend, opts);
}

/**
 * Restores `model`'s weights in place from a model folder (a checkpoint written by saveModel), with
 * buildModel's checks; `ignore` skips tensors of something else in the folder.
 */
export function restoreModel(model: CausalLM, dir: string, ignore?: (name: string) => boolean): HfFolder {
  const folder = loadHfFolder(dir, { lazy: true });
  restoreWeights(model, folder.tensors, dir, ignore);
  return folder;
}

/**
 * A tensor's float32 values for a file writer: where the backend reads synchronously (CPU), a
 * function that reads them when the writer gets to this tensor, so that a model is never copied
 * to the host whole; elsewhere (WebGPU) the values, read now.
 */
export async function f32Reader(t: Tensor): Promise<Float32Array | (() => Float32Array)> {
  const f32 = (a: TypedArray): Float32Array => (a instanceof Float32Array ? a : Float32Array.from(a));
  const b = t.backend;
  if (b.peekSync !== undefined) return () => f32(b.peekSync!(t.storage));
  if (b.readSync !== undefined) return () => f32(b.readSync!(t.storage));
  return f32(await t.toArray());
}

/** The parameters under their HF names (tied weights once), read to the host as each is written. */
export async function hostParams(
  model: CausalLM,
): Promise<Map<string, { name: string; dtype: 'F32'; shape: number[]; data: Float32Array | (() => Float32Array) }>> {
  const out = new Map<
    string,
    { name: string; dtype: 'F32'; shape: number[]; data: Float32Array | (() => Float32Array) }
  >();
  for (const [name, t] of model.params)
    out.set(name, { name, dtype: 'F32', shape: [...t.shape], data: await f32Reader(t) });
  return out;
}

/** Writes the model as a Hugging Face folder (config.json + model.safetensors, float32), atomically. */
export async function saveModel(
  model: CausalLM,
  dir: string,
  extra: { generationConfig?: Json; extraFiles?: Record<string, string | Uint8Array> } = {},
): Promise<void> {
  const tensors = await hostParams(model);
  const config = { ...model.config, torch_dtype: 'float32', dtype: 'float32' };
  saveHfFolder(dir, { config, tensors, generationConfig: extra.generationConfig, extraFiles: extra.extraFiles });
}
