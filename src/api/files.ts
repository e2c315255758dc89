// Models, tokenizers and LoRA adapters from files already in memory (a browser's File objects from
// a folder picker or fetched ArrayBuffers, or bytes read by any other means), with the same checks
// as loading a folder in Node. No file-system access: this is what the browser entry offers.
import type { Backend } from '../core/backend.js';
import type { Json } from '../io/hf.js';
import { peftAdapterFrom } from '../io/peft-adapter.js';
import type { RawTensor } from '../io/raw-tensor.js';
import { parseSafetensors } from '../io/safetensors-format.js';
import { buildModel } from '../models/build.js';
import { attachPeftAdapter, type AdapterInfo } from '../models/adapter.js';
import type { CausalLM } from '../models/model.js';
import { createTokenizer } from '../tokenizer/hf.js';
import type { TextTokenizer } from '../tokenizer/types.js';

/** The contents of one file: bytes, a Blob / File, or text. */
export type FileData = ArrayBuffer | ArrayBufferView | Blob | string;

/**
 * The files of one Hugging Face folder: a record from file name (config.json, model.safetensors, ...)
 * to contents, or File objects (their names; a folder picker's paths are cut to the file name).
 */
export type FileSet = Record<string, FileData> | Iterable<File>;

/** The files of a FileSet as bytes by file name; `label` names the set in errors. */
export async function readFileSet(files: FileSet, label = 'files'): Promise<FolderBytes> {
  const entries: [string, FileData][] =
    Symbol.iterator in files
      ? [...(files as Iterable<File>)].map((f) => [f.name, f])
      : Object.entries(files as Record<string, FileData>);
  const map = new Map<string, Uint8Array>();
  for (const [path, data] of entries) {
    const name = path.split('/').pop()!;
    map.set(name, await bytesOf(data));
  }
  return new FolderBytes(map, label);
}

async function bytesOf(d: FileData): Promise<Uint8Array> {
  if (typeof d === 'string') return new TextEncoder().encode(d);
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  if (ArrayBuffer.isView(d)) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  return new Uint8Array(await d.arrayBuffer());
}

/** A folder's files in memory; errors name the folder's label and the file. */
export class FolderBytes {
  constructor(
    readonly files: ReadonlyMap<string, Uint8Array>,
    readonly label: string,
  ) {}

  /** Whether the set holds `name`. */
  has(name: string): boolean {
    return this.files.has(name);
  }

  /** The bytes of `name`; an error naming the set and its files when absent. */
  bytes(name: string): Uint8Array {
    const b = this.files.get(name);
    if (!b)
      throw new Error(`${this.label}: no ${name} (given: ${[...this.files.keys()].sort().join(', ') || 'nothing'})`);
    return b;
  }

  /** The text (UTF-8) of `name`. */
  text(name: string): string {
    return new TextDecoder().decode(this.bytes(name));
  }

  /** A JSON object file, or null when absent and `optional`. */
  json(name: string, optional: true): Json | null;
  json(name: string, optional?: false): Json;
  json(name: string, optional = false): Json | null {
    if (optional && !this.has(name)) return null;
    let v: unknown;
    try {
      v = JSON.parse(this.text(name));
    } catch (e) {
      throw new Error(`${this.label}: ${name} is not valid JSON (${(e as Error).message})`);
    }
    if (!v || typeof v !== 'object' || Array.isArray(v))
      throw new Error(`${this.label}: ${name} should hold a JSON object`);
    return v as Json;
  }

  /** The tensors of one safetensors file. */
  tensors(name: string): Map<string, RawTensor> {
    return parseSafetensors(this.bytes(name), `${this.label}/${name}`).tensors;
  }
}

/** Reads a set of files once, or passes an already-read set through. */
const folder = async (files: FileSet | FolderBytes, label: string): Promise<FolderBytes> =>
  files instanceof FolderBytes ? files : readFileSet(files, label);

/**
 * A causal LM from the files of a Hugging Face model folder: config.json and model.safetensors, or
 * model.safetensors.index.json and its shards. Every tensor is checked against config.json.
 */
export async function modelFromFiles(
  files: FileSet | FolderBytes,
  opts: { label?: string; backend?: Backend } = {},
): Promise<CausalLM> {
  const f = await folder(files, opts.label ?? 'model files');
  const config = f.json('config.json');
  let tensors: Map<string, RawTensor>;
  if (f.has('model.safetensors')) tensors = f.tensors('model.safetensors');
  else if (f.has('model.safetensors.index.json')) {
    const map = f.json('model.safetensors.index.json').weight_map;
    if (!map || typeof map !== 'object') throw new Error(`${f.label}: model.safetensors.index.json has no weight_map`);
    tensors = new Map();
    for (const shard of new Set(Object.values(map as Record<string, string>)))
      for (const [k, t] of f.tensors(shard)) tensors.set(k, t);
  } else {
    throw new Error(
      `${f.label}: expected model.safetensors or model.safetensors.index.json ` +
        `(given: ${[...f.files.keys()].sort().join(', ')})`,
    );
  }
  return buildModel(config, tensors, f.label, opts.backend);
}

/** The tokenizer of a Hugging Face model folder's files (tokenizer.json, and the config files beside it). */
export async function tokenizerFromFiles(
  files: FileSet | FolderBytes,
  opts: { label?: string } = {},
): Promise<TextTokenizer> {
  const f = await folder(files, opts.label ?? 'tokenizer files');
  if (!f.has('tokenizer.json'))
    throw new Error(`${f.label}: no tokenizer.json (tsdpo reads Hugging Face fast tokenizers)`);
  let chatTemplateFile: string | null = null;
  if (f.has('chat_template.jinja')) chatTemplateFile = f.text('chat_template.jinja');
  else if (typeof f.json('chat_template.json', true)?.chat_template === 'string')
    chatTemplateFile = f.json('chat_template.json').chat_template as string;
  return createTokenizer({
    tokenizerJson: f.json('tokenizer.json'),
    tokenizerConfig: f.json('tokenizer_config.json', true),
    specialTokensMap: f.json('special_tokens_map.json', true),
    generationConfig: f.json('generation_config.json', true),
    modelConfig: f.json('config.json', true),
    chatTemplateFile,
    source: f.label,
  });
}

/** Attaches a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) to `model`. */
export async function adapterFromFiles(
  model: CausalLM,
  files: FileSet | FolderBytes,
  opts: { label?: string } = {},
): Promise<AdapterInfo> {
  const f = await folder(files, opts.label ?? 'adapter files');
  const adapter = peftAdapterFrom(
    f.label,
    f.json('adapter_config.json'),
    f.tensors('adapter_model.safetensors'),
    `${f.label}/adapter_model.safetensors`,
  );
  return attachPeftAdapter(model, adapter, f.label);
}
