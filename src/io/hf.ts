// Hugging Face model folders as save_pretrained writes them: config.json, the weights as one
// model.safetensors or as shards listed in model.safetensors.index.json, and the side JSON files
// (generation, tokenizer). Tensor names are kept exactly as in the files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceDirAtomic, writeFileAtomic } from './atomic.js';
import { dtypeSize, numel } from './dtype.js';
import type { RawTensor } from './raw-tensor.js';
import { readSafetensors, writeSafetensors, type ReadOptions, type TensorToWrite } from './safetensors.js';

export type Json = Record<string, unknown>;

export interface HfFolder {
  dir: string;
  /** config.json as parsed (HF key names). */
  config: Json;
  /** Every weight by its name in the files. */
  tensors: Map<string, RawTensor>;
  /** The weight files read, in order. */
  files: string[];
  /** Raw JSON of generation_config.json, tokenizer_config.json, special_tokens_map.json if present. */
  generationConfig?: Json;
  tokenizerConfig?: Json;
  specialTokensMap?: Json;
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** transformers 4.x's save_pretrained default max_shard_size "5GB" (decimal, as huggingface_hub
 *  parses it); transformers 5 raised its default to "50GB". */
export const DEFAULT_MAX_SHARD_BYTES = 5e9;

/** Reads and parses a JSON object file; errors name the file. */
export function readJsonFile(file: string, who: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${who}: ${file} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(
      `${who}: ${file} should hold a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  return value as Json;
}

function optionalJson(dir: string, name: string, who: string): Json | undefined {
  const file = path.join(dir, name);
  return fs.existsSync(file) ? readJsonFile(file, who) : undefined;
}

/** Throws unless `dir` is an existing folder. */
export function requireFolder(dir: string, who: string): void {
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st) throw new Error(`${who}: folder ${dir} does not exist`);
  if (!st.isDirectory()) throw new Error(`${who}: ${dir} is a file, not a model folder`);
}

/** Why a folder without safetensors weights cannot be loaded, with a hint for known formats. */
function missingWeights(dir: string, who: string): Error {
  const names = fs.readdirSync(dir);
  const bin = names.find((n) => /^pytorch_model.*\.bin(\.index\.json)?$/.test(n));
  if (bin) {
    return new Error(
      `${who}: ${dir} has ${bin} but only safetensors is supported: convert with ` +
        `python -c "from transformers import AutoModelForCausalLM as ` +
        `M; M.from_pretrained('${dir}').save_pretrained('${dir}-st')"`,
    );
  }
  const other = names.find((n) => /^(consolidated.*\.safetensors|.*\.gguf|tf_model\.h5|flax_model\.msgpack)$/.test(n));
  const hint = other
    ? ` (${other} is not a transformers checkpoint; save the model with transformers' save_pretrained)`
    : '';
  return new Error(
    `${who}: expected ${SINGLE_FILE} or ${INDEX_FILE} in ${dir}${hint}; found: ${names.join(', ') || 'nothing'}`,
  );
}

/** Loads a model folder. With `lazy`, tensor bytes are read from the files on first use. */
export function loadHfFolder(dir: string, opts: ReadOptions = {}): HfFolder {
  const who = 'loadHfFolder';
  requireFolder(dir, who);
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) {
    const adapter = fs.existsSync(path.join(dir, 'adapter_config.json'));
    throw new Error(
      adapter
        ? `${who}: ${dir} holds a PEFT adapter (adapter_config.json), not a ` +
            `model: load its base model, then the adapter with loadPeftAdapter`
        : `${who}: no config.json in ${dir} (a Hugging Face model folder has config.json beside its weights)`,
    );
  }
  const config = readJsonFile(configFile, who);
  const single = path.join(dir, SINGLE_FILE),
    index = path.join(dir, INDEX_FILE);
  let tensors: Map<string, RawTensor>, files: string[];
  if (fs.existsSync(single)) {
    // transformers also prefers the single file when both exist
    tensors = readSafetensors(single, opts).tensors;
    files = [single];
  } else if (fs.existsSync(index)) {
    ({ tensors, files } = loadShards(dir, index, opts));
  } else {
    throw missingWeights(dir, who);
  }
  return {
    dir,
    config,
    tensors,
    files,
    generationConfig: optionalJson(dir, 'generation_config.json', who),
    tokenizerConfig: optionalJson(dir, 'tokenizer_config.json', who),
    specialTokensMap: optionalJson(dir, 'special_tokens_map.json', who),
  };
}

/** Reads the shards an index lists, checking that index and shards agree tensor by tensor. */
function loadShards(
  dir: string,
  indexFile: string,
  opts: ReadOptions,
): { tensors: Map<string, RawTensor>; files: string[] } {
  const who = `loadHfFolder: ${indexFile}`;
  const map = readJsonFile(indexFile, 'loadHfFolder').weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${who}: no "weight_map" object`);
  const weightMap = map as Record<string, unknown>;
  const shards = new Map<string, string[]>(); // shard file -> tensor names the index puts there
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || path.isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
      throw new Error(
        `${who}: weight_map gives tensor '${name}' the file ${JSON.stringify(file)}, not a file name in the folder`,
      );
    }
    shards.set(file, [...(shards.get(file) ?? []), name]);
  }
  if (shards.size === 0) throw new Error(`${who}: weight_map is empty`);
  const tensors = new Map<string, RawTensor>(),
    files: string[] = [];
  for (const shard of [...shards.keys()].sort()) {
    const file = path.join(dir, shard),
      listed = shards.get(shard)!;
    if (!fs.existsSync(file)) {
      throw new Error(
        `${who}: shard ${shard} (holding ${listed.length} tensors, e.g. '${listed[0]}') is missing from ${dir}`,
      );
    }
    const got = readSafetensors(file, opts).tensors;
    for (const [name, t] of got) {
      if (weightMap[name] !== shard) {
        throw new Error(
          `${who}: shard ${shard} holds tensor '${name}', which the index ` +
            (name in weightMap ? `places in ${weightMap[name]}` : 'does not list'),
        );
      }
      tensors.set(name, t);
    }
    const absent = listed.filter((n) => !got.has(n));
    if (absent.length > 0) {
      throw new Error(
        `${who}: the index places ${absent.length} tensors in ${shard} that it does not hold, e.g. '${absent[0]}'`,
      );
    }
    files.push(file);
  }
  return { tensors, files };
}

/** JSON text as transformers writes config files: keys sorted, 2-space indent, final newline. */
export function jsonText(value: unknown): string {
  const sorted = (v: unknown): unknown =>
    typeof v !== 'object' || v === null
      ? v
      : Array.isArray(v)
        ? v.map(sorted)
        : Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sorted((v as Json)[k])]),
          );
  return JSON.stringify(sorted(value), null, 2) + '\n';
}

export interface HfModelToSave {
  config: Json;
  /** Weights in the order they should fill the shards (a Map from loadHfFolder works as is). */
  tensors: ReadonlyMap<string, TensorToWrite> | readonly TensorToWrite[];
  generationConfig?: Json;
  tokenizerConfig?: Json;
  specialTokensMap?: Json;
  /** More files to write into the folder (e.g. tokenizer.json), by file name. */
  extraFiles?: Record<string, string | Uint8Array>;
}

export interface SaveOptions {
  /** Largest shard in bytes before splitting (a bigger single tensor gets a shard of its own). */
  maxShardBytes?: number;
}

/** Groups tensors into shards as huggingface_hub's split_torch_state_dict_into_shards does. */
export function planShards(tensors: readonly TensorToWrite[], maxShardBytes: number): TensorToWrite[][] {
  const shards: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [],
    size = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * dtypeSize(t.dtype);
    if (bytes > maxShardBytes) {
      shards.push([t]);
      continue;
    }
    if (size + bytes > maxShardBytes && current.length > 0) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += bytes;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

/** Writes a model folder as save_pretrained does, replacing `dir` as a whole (atomic.ts):
 *  config.json, model.safetensors or model-0000i-of-0000N.safetensors + model.safetensors.index.json,
 *  and the optional JSON and extra files. Returns the weight file names. */
export function saveHfFolder(dir: string, model: HfModelToSave, opts: SaveOptions = {}): string[] {
  const who = `saveHfFolder: ${dir}`;
  const max = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(max > 0)) throw new Error(`${who}: maxShardBytes must be positive, got ${max}`);
  const list =
    'values' in model.tensors && !Array.isArray(model.tensors)
      ? [...(model.tensors as ReadonlyMap<string, TensorToWrite>).values()]
      : [...(model.tensors as readonly TensorToWrite[])];
  if (list.length === 0) throw new Error(`${who}: no tensors to save`);
  const seen = new Set<string>();
  for (const t of list) {
    if (seen.has(t.name)) throw new Error(`${who}: tensor '${t.name}' is given twice`);
    seen.add(t.name);
  }
  for (const name of Object.keys(model.extraFiles ?? {})) {
    if (!name || path.isAbsolute(name) || name.split(/[\\/]/).includes('..')) {
      throw new Error(`${who}: extra file name ${JSON.stringify(name)} must be a relative path inside the folder`);
    }
  }
  const shards = planShards(list, max);
  const n = shards.length,
    pad = (i: number) => String(i).padStart(5, '0');
  const names = n === 1 ? [SINGLE_FILE] : shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(n)}.safetensors`);
  replaceDirAtomic(dir, (tmp) => {
    writeFileAtomic(path.join(tmp, 'config.json'), jsonText(model.config));
    shards.forEach((shard, i) => writeSafetensors(path.join(tmp, names[i]), shard));
    if (n > 1) {
      const weightMap: Record<string, string> = {};
      let totalSize = 0,
        totalParameters = 0;
      shards.forEach((shard, i) =>
        shard.forEach((t) => {
          weightMap[t.name] = names[i];
          totalSize += numel(t.shape) * dtypeSize(t.dtype);
          totalParameters += numel(t.shape);
        }),
      );
      writeFileAtomic(
        path.join(tmp, INDEX_FILE),
        jsonText({
          metadata: { total_parameters: totalParameters, total_size: totalSize },
          weight_map: weightMap,
        }),
      );
    }
    const side: [string, Json | undefined][] = [
      ['generation_config.json', model.generationConfig],
      ['tokenizer_config.json', model.tokenizerConfig],
      ['special_tokens_map.json', model.specialTokensMap],
    ];
    for (const [name, value] of side) if (value) writeFileAtomic(path.join(tmp, name), jsonText(value));
    for (const [name, content] of Object.entries(model.extraFiles ?? {})) {
      fs.mkdirSync(path.dirname(path.join(tmp, name)), { recursive: true });
      writeFileAtomic(path.join(tmp, name), content);
    }
  });
  return names;
}
