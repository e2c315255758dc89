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
 * LoRA dropout of one training forward (PEFT's lora_dropout on the adapter's input), passed with
 * the forward's options: probability p, and a stream of mask seeds from `seed`. Each adapted layer
 * call draws the next one, so masks depend only on (seed, call) and a run is reproducible;
 * activation checkpointing rewinds `calls` to replay a block's masks (nn/checkpoint.ts).
 */
export class LoraDropout {
  /** Masks drawn so far. */
  calls = 0;

  constructor(
    readonly p: number,
    readonly seed: number,
  ) {
    if (!(p >= 0 && p < 1)) throw new Error(`LoraDropout: p = ${p} is not a probability in [0, 1)`);
  }

  /** The seed of the next mask. */
  next(): number {
    return (Math.imul((this.seed >>> 0) ^ 0x9e3779b9, 2654435761) + this.calls++) >>> 0;
  }
}

/**
 * Applies the layer; the adapter is used only when `adapterOn`, its input dropped out by `drop`
 * when given (and recording gradients: training).
 */
export function dense(x: Tensor, layer: Dense, adapterOn = true, drop: LoraDropout | null = null): Tensor {
  const y = linear(x, layer.weight, layer.bias, { transposed: layer.fanInFanOut });
  const l = layer.lora;
  if (!l || !adapterOn) return y;
  const xa = drop && drop.p > 0 && gradEnabled() ? dropout(x, drop.p, drop.next()) : x;
  return add(y, mulScalar(linear(linear(xa, l.A), l.B), l.scaling));
}
