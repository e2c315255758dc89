// The memory report (--memory_report): the backend's peak bytes during training split into
// weights (policy, reference), gradients, optimizer state, logits and the rest (activations and
// temporaries), and what else was live when training began. Weights, gradients and optimizer state are counted from
// their tensors; logits
// from the head's largest chunk (chunked-head.ts); the rest is the peak minus all of those.
import type { Backend } from '../core/backend.js';
import { BYTES } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';
import type { CausalLM } from '../models/model.js';
import { headMemory } from './chunked-head.js';
import type { NamedParam, Optimizer } from './optim.js';

export interface MemorySplit {
  peak: number;
  policy: number;
  reference: number;
  gradients: number;
  optimizer: number;
  logits: number;
  /** Live before training began besides the weights (other models of the process, caches). */
  other: number;
  /** peak minus everything above (never below 0). */
  activations: number;
  /** Live bytes when training began (after any reference pass and its model were freed). */
  start: number;
}

/**
 * The dtype that frozen weights (a reference model, a LoRA base) load in for frozen_dtype: bf16 where
 * the backend has kernels for it, else f32 with a notice.
 */
export function frozenDtypeOf(
  cfg: { frozen_dtype: string },
  backend: Backend,
  log: (line: string) => void,
): 'f32' | 'bf16' {
  if (cfg.frozen_dtype !== 'bfloat16') return 'f32';
  if (backend.supports('bf16')) return 'bf16';
  log(`notice: frozen_dtype bfloat16 is not available on the ${backend.name} backend; frozen weights stay float32`);
  return 'f32';
}

/** Bytes of the live tensors among ts, each storage counted once. */
export function tensorBytes(ts: Iterable<Tensor>, seen = new Set<unknown>()): number {
  let n = 0;
  for (const t of ts) {
    if (t.disposed || seen.has(t.storage)) continue;
    seen.add(t.storage);
    n += t.size * BYTES[t.dtype];
  }
  return n;
}

export class MemoryReport {
  readonly start: number;

  /** Starts measuring: the backend's peak and the head's largest logits from now on. */
  constructor(
    readonly backend: Backend,
    readonly policy: CausalLM,
    readonly params: NamedParam[],
    readonly reference: CausalLM | null,
  ) {
    this.start = backend.liveBytes();
    backend.resetPeak?.();
    headMemory.peakBytes = 0;
  }

  split(optimizer: Optimizer): MemorySplit {
    const seen = new Set<unknown>();
    const policy =
      tensorBytes(this.policy.params.values(), seen) +
      tensorBytes(
        this.params.map((p) => p.tensor),
        seen,
      );
    const reference = this.reference ? tensorBytes(this.reference.params.values(), seen) : 0;
    // Every trained parameter holds a float32 gradient of its size during backward.
    const gradients = this.params.reduce((a, p) => a + 4 * p.tensor.size, 0);
    const opt = optimizer.step > 0 ? tensorBytes(optimizer.stateTensors().values()) : 0;
    const peak = this.backend.peak ?? this.backend.liveBytes();
    const logits = headMemory.peakBytes;
    const other = Math.max(0, this.start - policy - reference);
    const activations = Math.max(0, peak - policy - reference - gradients - opt - logits - other);
    return { peak, policy, reference, gradients, optimizer: opt, logits, other, activations, start: this.start };
  }

  /** Where tensors moved out to host memory (CPU beyond 4 GiB): how much at most, and the traffic. */
  private spillNote(f: (n: number) => string, unit: string): string {
    const sp = this.backend.spill;
    if (sp === undefined || sp.spills === 0) return '';
    return (
      `; beyond the WebAssembly memory: peak ${f(sp.peakSpilledBytes)} ${unit} in host memory ` +
      `(${f(sp.residentAtPeak)} ${unit} inside it then), ${sp.spills} moves out, ${f(sp.movedBytes)} ${unit} copied in all`
    );
  }

  line(optimizer: Optimizer, when: string): string {
    const m = this.split(optimizer);
    const u = m.peak >= 2 ** 30 ? (['GiB', 2 ** 30] as const) : (['MiB', 2 ** 20] as const);
    const f = (n: number): string => (n / u[1]).toFixed(u[0] === 'GiB' ? 2 : 1);
    const peakWord = this.backend.peak === undefined ? 'live' : 'peak';
    return (
      `memory (${this.backend.name}, ${when}): ${peakWord} ${f(m.peak)} ${u[0]} = weights ` +
      `${f(m.policy + m.reference)} (policy ${f(m.policy)}, reference ${f(m.reference)})` +
      ` + gradients ${f(m.gradients)} + optimizer ${f(m.optimizer)} + logits ` +
      `${f(m.logits)} + activations and temporaries ` +
      `${f(m.activations)}${m.other > 0 ? ` + other ${f(m.other)}` : ''}; live when training began ${f(m.start)}` +
      this.spillNote(f, u[0])
    );
  }
}
