// PEFT LoRA adapter folders as peft's save_pretrained writes them: adapter_config.json and
// adapter_model.safetensors, whose keys are `base_model.model.<module path>.lora_A.weight` [r, in]
// and `...lora_B.weight` [out, r] (no adapter name), plus whole tensors of modules_to_save.
// The adapted weight is W' = W + scaling * B A (Eq. 3, arXiv:2106.09685).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceDirAtomic, writeFileAtomic } from './atomic.js';
import { jsonText, readJsonFile, requireFolder, type Json } from './hf.js';
import {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  checkModule,
  peftAdapterFrom,
  PREFIX,
  WRITTEN_DEFAULTS,
  type LoraWeight,
  type PeftAdapter,
  type PeftAdapterToSave,
} from './peft-adapter.js';
import { parseLoraConfig } from './peft-config.js';
import { readSafetensors, writeSafetensors, type ReadOptions, type TensorToWrite } from './safetensors.js';

export * from './peft-adapter.js';

/** Loads an adapter folder; every module is checked against the config (target, rank, shapes). */
export function loadPeftAdapter(dir: string, opts: ReadOptions = {}): PeftAdapter {
  const who = 'loadPeftAdapter';
  requireFolder(dir, who);
  const configFile = path.join(dir, ADAPTER_CONFIG),
    weightsFile = path.join(dir, ADAPTER_WEIGHTS);
  if (!fs.existsSync(configFile)) {
    const model = fs.existsSync(path.join(dir, 'config.json'))
      ? ' (it has config.json: a full model? use loadHfFolder)'
      : '';
    throw new Error(`${who}: no ${ADAPTER_CONFIG} in ${dir}${model}`);
  }
  const rawConfig = readJsonFile(configFile, who);
  parseLoraConfig(rawConfig, `${who}: ${configFile}`);
  if (!fs.existsSync(weightsFile)) {
    const bin = fs.existsSync(path.join(dir, 'adapter_model.bin'));
    throw new Error(
      `${who}: no ${ADAPTER_WEIGHTS} in ${dir}` +
        (bin
          ? '; it has adapter_model.bin, but only safetensors ' +
            'is supported: convert with peft (PeftModel.from_pretrained(base, dir).save_pretrained(out))'
          : ''),
    );
  }
  return peftAdapterFrom(dir, rawConfig, readSafetensors(weightsFile, opts).tensors, `${who}: ${weightsFile}`);
}

/** Writes an adapter folder as peft does, replacing `dir` as a whole. */
export function savePeftAdapter(dir: string, adapter: PeftAdapterToSave): void {
  const who = `savePeftAdapter: ${dir}`;
  const raw: Json = { ...WRITTEN_DEFAULTS, ...adapter.extraConfig, ...adapter.config };
  const config = parseLoraConfig(raw, who);
  const tensors: TensorToWrite[] = [];
  const add = (name: string, w: LoraWeight) =>
    tensors.push({ name: PREFIX + name, dtype: w.dtype ?? 'F32', shape: w.shape, data: w.data });
  for (const [p, { A, B }] of adapter.modules) {
    checkModule(p, A.shape, B.shape, config, who);
    add(`${p}.lora_A.weight`, A);
    add(`${p}.lora_B.weight`, B);
  }
  for (const [name, w] of adapter.extraTensors ?? []) add(name, w);
  replaceDirAtomic(dir, (tmp) => {
    writeFileAtomic(path.join(tmp, ADAPTER_CONFIG), jsonText(raw));
    writeSafetensors(path.join(tmp, ADAPTER_WEIGHTS), tensors);
  });
}
