// Checkpoint tensors into backend tensors a chunk at a time (RawTensor.float32Chunks): the values
// go from the file (or the bytes in memory) through a few MiB of scratch straight into the tensor's
// memory, so loading a model makes no whole-tensor host copy (a float32 copy of a 545 MB embedding,
// garbage until the next collection, and its file bytes before that).
import type { Backend } from '../core/backend.js';
import { empty, type Tensor } from '../core/tensor.js';
import type { RawTensor } from '../io/raw-tensor.js';

/** A new tensor of `rt`'s shape on `backend`: float32, or bfloat16 (bf16 bits as stored, others rounded to nearest even). */
export function placeRaw(rt: RawTensor, dtype: 'f32' | 'bf16', backend: Backend): Tensor {
  const t = empty(rt.shape, dtype, backend);
  try {
    writeRaw(t, rt);
  } catch (e) {
    t.dispose();
    throw e;
  }
  return t;
}

/** Overwrites `t`'s values with `rt`'s (same number of elements; float32 values, or bf16 bits for a bf16 tensor). */
export function writeRaw(t: Tensor, rt: RawTensor): void {
  const b = t.backend;
  if (t.dtype === 'bf16') rt.bf16Chunks((bits, at) => b.write(t.storage, bits, at));
  else rt.float32Chunks((values, at) => b.write(t.storage, values, at));
}
