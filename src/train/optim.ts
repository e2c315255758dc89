// Optimizers with PyTorch's update rules (torch.optim.AdamW, RMSprop, SGD), one fused kernel per
// parameter, and global gradient-norm clipping (torch.nn.utils.clip_grad_norm_).
import { keep, zeros, type Tensor } from '../core/index.js';

export type OptimizerName = 'adamw' | 'rmsprop' | 'sgd';
export const OPTIMIZERS: OptimizerName[] = ['adamw', 'rmsprop', 'sgd'];

export interface OptimizerConfig {
  name: OptimizerName;
  /** adam_beta1, adam_beta2, adam_epsilon (TrainingArguments names). */
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Which parameters weight decay applies to (default: all, as a bare torch optimizer). */
  decayed?: (name: string) => boolean;
  /** SGD momentum. */
  momentum: number;
  /** RMSprop smoothing constant. */
  alpha: number;
}

export const DEFAULT_OPTIMIZER: OptimizerConfig = {
  name: 'adamw',
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  momentum: 0,
  alpha: 0.99,
};

/**
 * Whether weight decay applies to a parameter (by its Hugging Face name), as transformers' Trainer
 * decides (get_decay_parameter_names): not to biases nor to normalisation weights. GPT-2's ln_1 /
 * ln_2 / ln_f are nn.LayerNorm modules, which transformers excludes by type.
 */
export function decays(name: string): boolean {
  return !/bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)|(?:^|\.)ln_/.test(name.toLowerCase());
}

export interface NamedParam {
  name: string;
  tensor: Tensor;
}

/** Per-parameter state tensors (m, v / square average / momentum buffer). */
type Slots = Tensor[];

export class Optimizer {
  /** Optimizer steps taken (for Adam's bias correction). */
  step = 0;
  private readonly slots = new Map<string, Slots>();

  constructor(
    readonly params: NamedParam[],
    readonly config: OptimizerConfig,
  ) {}

  private slotsOf(p: NamedParam): Slots {
    let s = this.slots.get(p.name);
    if (!s) {
      const count =
        this.config.name === 'adamw' ? 2 : this.config.name === 'rmsprop' ? 1 : this.config.momentum > 0 ? 1 : 0;
      s = Array.from({ length: count }, () => keep(zeros(p.tensor.shape, 'f32', p.tensor.backend)));
      this.slots.set(p.name, s);
    }
    return s;
  }

  /** Applies one update with learning rate `lr` to every parameter that has a gradient. */
  update(lr: number): void {
    this.step++;
    const c = this.config,
      t = this.step;
    for (const p of this.params) {
      const g = p.tensor.grad;
      if (!g) continue;
      const k = p.tensor.backend.kernels,
        s = this.slotsOf(p),
        n = p.tensor.size;
      const [P, G] = [p.tensor.storage, g.storage];
      const weightDecay = !c.decayed || c.decayed(p.name) ? c.weightDecay : 0;
      if (c.name === 'adamw') {
        k.adamw({
          p: P,
          g: G,
          m: s[0].storage,
          v: s[1].storage,
          n,
          lr,
          beta1: c.beta1,
          beta2: c.beta2,
          eps: c.eps,
          weightDecay,
          bc1: 1 - c.beta1 ** t,
          bc2: 1 - c.beta2 ** t,
        });
      } else if (c.name === 'rmsprop') {
        k.rmsprop({ p: P, g: G, sq: s[0].storage, n, lr, alpha: c.alpha, eps: c.eps, weightDecay });
      } else {
        k.sgd({ p: P, g: G, buf: s[0]?.storage ?? null, n, lr, momentum: c.momentum, weightDecay });
      }
    }
  }

  /** Drops the gradients (set_to_none). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.tensor.grad?.dispose();
      p.tensor.grad = null;
    }
  }

  /** State tensors by `<param name>.<slot>` for checkpoints. */
  stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const p of this.params) this.slotsOf(p).forEach((t, i) => out.set(`${p.name}.${i}`, t));
    return out;
  }

  /** Restores state written by stateTensors (values copied in). */
  loadState(step: number, values: Map<string, Float32Array>): void {
    this.step = step;
    for (const p of this.params) {
      this.slotsOf(p).forEach((t, i) => {
        const v = values.get(`${p.name}.${i}`);
        if (!v) throw new Error(`optimizer state: missing ${p.name}.${i}`);
        if (v.length !== t.size)
          throw new Error(`optimizer state: ${p.name}.${i} has ${v.length} values, expected ${t.size}`);
        t.backend.write(t.storage, v);
      });
    }
  }

  dispose(): void {
    for (const s of this.slots.values()) for (const t of s) t.dispose();
    this.slots.clear();
  }
}

/**
 * The global L2 norm of all gradients; when maxNorm > 0 scales them by
 * min(1, maxNorm / (norm + 1e-6)) as clip_grad_norm_. Returns the norm before clipping.
 */
export async function clipGradNorm(params: NamedParam[], maxNorm: number): Promise<number> {
  const grads = params.map((p) => p.tensor.grad).filter((g): g is Tensor => g !== null);
  if (grads.length === 0) return 0;
  const acc = zeros([1], 'f32', grads[0].backend);
  for (const g of grads) g.backend.kernels.sumSquares({ x: g.storage, n: g.size, out: acc.storage, index: 0 });
  const norm = Math.sqrt(await acc.item());
  acc.dispose();
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    if (coef < 1)
      for (const g of grads)
        g.backend.kernels.affine({ x: g.storage, out: g.storage, n: g.size, scale: coef, shift: 0 });
  }
  return norm;
}
