// Linear layers as stored in Hugging Face checkpoints (weight [out, in]; GPT-2's Conv1D stores
// [in, out]), with an optional LoRA adapter in PEFT's form: y = x W^T + b + scaling * (x A^T) B^T,
// A [r, in], B [out, r].
import { add, linear, matmul, mulScalar } from '../core/ops/index.js';
import type { Tensor } from '../core/tensor.js';

export interface LoraPair {
  A: Tensor;
  B: Tensor;
  scaling: number;
}

export interface Dense {
  weight: Tensor;
  bias: Tensor | null;
  /** Weight stored [in, out] (GPT-2's Conv1D; PEFT's fan_in_fan_out). */
  fanInFanOut?: boolean;
  /** Set when a LoRA adapter targets this layer. */
  lora?: LoraPair | null;
}

/** Applies the layer; the adapter is used only when `adapterOn`. */
export function dense(x: Tensor, layer: Dense, adapterOn = true): Tensor {
  const y = layer.fanInFanOut
    ? (layer.bias ? add(matmul(x, layer.weight), layer.bias) : matmul(x, layer.weight))
    : linear(x, layer.weight, layer.bias);
  const l = layer.lora;
  if (!l || !adapterOn) return y;
  return add(y, mulScalar(linear(linear(x, l.A), l.B), l.scaling));
}
