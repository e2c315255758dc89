// LoRA adapter folders, compatible with PEFT: load one onto a loaded model, restore a checkpoint's,
// save one (Node: io/peft.ts reads and writes the files). Everything else about adapters, in memory,
// is models/adapter.ts's, re-exported here.
import { fmt } from '../core/shape.js';
import type { LoraConfig } from '../io/peft-config.js';
import { loadPeftAdapter, savePeftAdapter, type PeftAdapter } from '../io/peft.js';
import { adapterOf, attachPeftAdapter, type AdapterInfo } from './adapter.js';
import type { CausalLM } from './model.js';

export * from './adapter.js';

/**
 * Attaches a PEFT adapter folder (adapter_config.json + adapter_model.safetensors). Whole tensors of
 * modules_to_save are errors unless their module is in `modulesToSave` (the caller reads those).
 */
export function loadAdapter(model: CausalLM, dir: string, opts: { modulesToSave?: string[] } = {}): AdapterInfo {
  return attachPeftAdapter(model, loadPeftAdapter(dir), dir, opts);
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
        `${path}: lora_A ${fmt(m.A.shape)} / lora_B ${fmt(m.B.shape)}, ` +
          `the run's are ${fmt(l.A.shape)} / ${fmt(l.B.shape)}`,
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
