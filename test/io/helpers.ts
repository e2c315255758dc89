// Shared helpers of the io tests: fixture paths, temporary folders, and an independent
// safetensors byte-level parser/builder (so tests do not check the reader with itself).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const FIXTURES = path.join(ROOT, 'test/fixtures/hf-tiny');
export const ARCHS = ['gpt2', 'llama', 'mistral', 'qwen2', 'qwen3', 'gemma3'] as const;

/** A fresh temporary folder, removed when the calling test ends. */
export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsdpo-io-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface RawFile {
  header: Record<string, any>;
  /** The data area. */
  data: Uint8Array;
}

/** Splits a safetensors file into its JSON header and data area (no validation). */
export function splitFile(file: Uint8Array): RawFile {
  const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength); // not a Buffer
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  return { header: JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')), data: bytes.subarray(8 + n) };
}

/** Builds a safetensors file from a header (object or raw text) and a data area. */
export function joinFile(
  header: Record<string, unknown> | string,
  data: Uint8Array,
  headerLength?: bigint,
): Uint8Array {
  let text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  text = Buffer.concat([text, Buffer.alloc((8 - (text.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(text.length));
  return new Uint8Array(Buffer.concat([len, text, data]));
}

/** Raw bytes of tensor `name` in a split file. */
export function tensorBytes(f: RawFile, name: string): Uint8Array {
  const [b, e] = f.header[name].data_offsets;
  return f.data.subarray(b, e);
}

/** Every weight name and shape a transformers model of this config has (HF module definitions:
 *  GPT2Model with Conv1D [in, out] weights; Llama-style decoders with [out, in] Linear weights). */
export function expectedShapes(c: Record<string, any>): Map<string, number[]> {
  const m = new Map<string, number[]>();
  if (c.model_type === 'gpt2') {
    const E = c.n_embd,
      I = c.n_inner ?? 4 * E;
    m.set('transformer.wte.weight', [c.vocab_size, E]).set('transformer.wpe.weight', [c.n_positions, E]);
    for (let i = 0; i < c.n_layer; i++) {
      const p = `transformer.h.${i}.`;
      for (const ln of ['ln_1', 'ln_2']) m.set(`${p}${ln}.weight`, [E]).set(`${p}${ln}.bias`, [E]);
      m.set(`${p}attn.c_attn.weight`, [E, 3 * E]).set(`${p}attn.c_attn.bias`, [3 * E]);
      m.set(`${p}attn.c_proj.weight`, [E, E]).set(`${p}attn.c_proj.bias`, [E]);
      m.set(`${p}mlp.c_fc.weight`, [E, I]).set(`${p}mlp.c_fc.bias`, [I]);
      m.set(`${p}mlp.c_proj.weight`, [I, E]).set(`${p}mlp.c_proj.bias`, [E]);
    }
    m.set('transformer.ln_f.weight', [E]).set('transformer.ln_f.bias', [E]);
    if (!c.tie_word_embeddings) m.set('lm_head.weight', [c.vocab_size, E]);
    return m;
  }
  const H = c.hidden_size,
    I = c.intermediate_size,
    nh = c.num_attention_heads;
  const nkv = c.num_key_value_heads ?? nh,
    hd = c.head_dim ?? H / nh;
  const qkBias = c.model_type === 'qwen2' || c.attention_bias === true;
  const qkNorm = c.model_type === 'qwen3' || c.model_type === 'gemma3_text';
  m.set('model.embed_tokens.weight', [c.vocab_size, H]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    m.set(`${p}input_layernorm.weight`, [H]).set(`${p}post_attention_layernorm.weight`, [H]);
    if (c.model_type === 'gemma3_text') {
      m.set(`${p}pre_feedforward_layernorm.weight`, [H]).set(`${p}post_feedforward_layernorm.weight`, [H]);
    }
    m.set(`${p}self_attn.q_proj.weight`, [nh * hd, H]).set(`${p}self_attn.o_proj.weight`, [H, nh * hd]);
    m.set(`${p}self_attn.k_proj.weight`, [nkv * hd, H]).set(`${p}self_attn.v_proj.weight`, [nkv * hd, H]);
    if (qkBias) {
      m.set(`${p}self_attn.q_proj.bias`, [nh * hd]);
      m.set(`${p}self_attn.k_proj.bias`, [nkv * hd]).set(`${p}self_attn.v_proj.bias`, [nkv * hd]);
    }
    if (qkNorm) m.set(`${p}self_attn.q_norm.weight`, [hd]).set(`${p}self_attn.k_norm.weight`, [hd]);
    m.set(`${p}mlp.gate_proj.weight`, [I, H])
      .set(`${p}mlp.up_proj.weight`, [I, H])
      .set(`${p}mlp.down_proj.weight`, [H, I]);
  }
  m.set('model.norm.weight', [H]);
  if (!c.tie_word_embeddings) m.set('lm_head.weight', [c.vocab_size, H]);
  return m;
}

/** Bits of float32 values, for bit-exact comparisons (NaN payloads included). */
export const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
