// Linear layers as stored in Hugging Face checkpoints (weight [out, in]; GPT-2's Conv1D stores
// [in, out]), with an optional LoRA adapter in PEFT's form: y = x W^T + b + scaling * (x A^T) B^T,
// A [r, in], B [out, r].
import { gradEnabled } from '../core/autograd.js';
import { add, dropout, linear, mulScalar } from '../core/ops/index.js';
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

/**
 * LoRA dropout while training (PEFT's lora_dropout on the adapter's input): set by the trainer
 * for each micro-batch; each adapted layer call draws the next seed, so a run is reproducible.
 */
const loraDropout = { p: 0, seed: 0, calls: 0 };

export function setLoraDropout(p: number, seed: number): void {
  loraDropout.p = p;
  loraDropout.seed = seed >>> 0;
  loraDropout.calls = 0;
}

/** The dropout draw counter, so that activation checkpointing can replay a block's masks (nn/checkpoint.ts). */
export function loraDropoutCalls(): number {
  return loraDropout.calls;
}

export function setLoraDropoutCalls(calls: number): void {
  loraDropout.calls = calls;
}

/** Applies the layer; the adapter is used only when `adapterOn`. */
export function dense(x: Tensor, layer: Dense, adapterOn = true): Tensor {
  const y = linear(x, layer.weight, layer.bias, { transposed: layer.fanInFanOut });
  const l = layer.lora;
  if (!l || !adapterOn) return y;
  const xa = loraDropout.p > 0 && gradEnabled()
    ? dropout(x, loraDropout.p, (Math.imul(loraDropout.seed ^ 0x9e3779b9, 2654435761) + loraDropout.calls++) >>> 0)
    : x;
  return add(y, mulScalar(linear(linear(xa, l.A), l.B), l.scaling));
}
