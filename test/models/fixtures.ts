// Access to the transformers fixtures in test/fixtures/hf-tiny (see its README.md).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';

export const ARCHS = ['gpt2', 'llama', 'mistral', 'qwen2', 'qwen3', 'gemma3'] as const;
export type Arch = (typeof ARCHS)[number];

export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/hf-tiny/', import.meta.url));

export interface Fixture {
  dir: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  tensors: Map<string, { shape: readonly number[]; f32: Float32Array; i32: () => Int32Array }>;
}

export function fixture(arch: string, file = 'expected.safetensors'): Fixture {
  const dir = `${FIXTURES}${arch}`;
  const st = readSafetensors(`${dir}/${file}`);
  const tensors = new Map<string, { shape: readonly number[]; f32: Float32Array; i32: () => Int32Array }>();
  for (const [name, t] of st.tensors) {
    tensors.set(name, {
      shape: t.shape,
      get f32() {
        return t.toFloat32();
      },
      i32: () => t.toInt32(),
    });
  }
  let json = {};
  try {
    json = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8'));
  } catch {
    /* lora has its own */
  }
  return { dir, json, tensors };
}

/** max |a - b| / max(max |b|, 1e-12): the error relative to the expected tensor's magnitude. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs expected ${expected.length}`);
  let diff = 0,
    mag = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    mag = Math.max(mag, Math.abs(expected[i]));
  }
  return diff / Math.max(mag, 1e-12);
}
