// Deterministic epoch sampler: a seeded shuffle of 0..N-1 per epoch, consumed in batches, with a position
// (epoch, index) that can be saved in a checkpoint and restored to resume on the very next example.
// The permutation of epoch e depends only on (seed, e), so a resumed run sees the same order.
// (Not torch's RandomSampler stream: tsdpo's own PRNG, mulberry32, with Fisher-Yates.)
import { mulberry32 } from '../core/random.js';

export interface DataPosition {
  epoch: number;
  /** Examples of this epoch already handed out. */
  index: number;
}

export interface SamplerState extends DataPosition {
  size: number;
  seed: number;
  shuffle: boolean;
}

export interface SamplerOptions {
  seed?: number;
  /** Shuffle each epoch (default true); false = 0..N-1 in order. */
  shuffle?: boolean;
  /** Skip an epoch's last partial batch (default false: a shorter last batch). */
  dropLast?: boolean;
  /** The order of an epoch when shuffling (default: epochPermutation's own). */
  permutation?: (size: number, seed: number, epoch: number) => Int32Array;
}

/** Mix seed and epoch into one 32-bit seed (murmur3 finalizer). */
function mix(seed: number, epoch: number): number {
  let h = (seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The order of 0..size-1 for one epoch. */
export function epochPermutation(size: number, seed: number, epoch: number, shuffle = true): Int32Array {
  const p = new Int32Array(size);
  for (let i = 0; i < size; i++) p[i] = i;
  if (!shuffle) return p;
  const rand = mulberry32(mix(seed, epoch));
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

export class EpochSampler {
  readonly size: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private epoch = 0;
  private index = 0;
  private order: Int32Array;
  private orderEpoch = 0;
  private readonly permute: (epoch: number) => Int32Array;

  constructor(size: number, opts: SamplerOptions = {}) {
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`EpochSampler: size is ${size}; the dataset has no examples`);
    this.size = size;
    this.seed = (opts.seed ?? 0) >>> 0;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    const custom = opts.permutation;
    this.permute = (e) =>
      custom && this.shuffle ? custom(size, this.seed, e) : epochPermutation(size, this.seed, e, this.shuffle);
    this.order = this.permute(0);
  }

  get position(): DataPosition {
    return { epoch: this.epoch, index: this.index };
  }

  private orderOf(epoch: number): Int32Array {
    if (this.orderEpoch !== epoch) {
      this.order = this.permute(epoch);
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  /** The next batch of example indices and the epoch they belong to (a batch never spans two epochs). */
  next(batchSize: number): { indices: number[]; epoch: number } {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`EpochSampler.next: batchSize is ${batchSize}`);
    if (this.dropLast && batchSize > this.size) {
      throw new Error(
        `EpochSampler.next: batchSize ${batchSize} > dataset size ${this.size} with dropLast: no batch fits`,
      );
    }
    if (this.index >= this.size || (this.dropLast && this.size - this.index < batchSize)) {
      this.epoch++;
      this.index = 0;
    }
    const order = this.orderOf(this.epoch);
    const end = Math.min(this.index + batchSize, this.size);
    const indices = Array.from(order.subarray(this.index, end));
    const epoch = this.epoch;
    this.index = end;
    return { indices, epoch };
  }

  state(): SamplerState {
    return { size: this.size, seed: this.seed, shuffle: this.shuffle, epoch: this.epoch, index: this.index };
  }

  /** Resume at a saved position; size, seed and shuffle must match the saved run. */
  restore(s: SamplerState | DataPosition): void {
    if ('size' in s) {
      if (s.size !== this.size || s.seed !== this.seed || s.shuffle !== this.shuffle) {
        throw new Error(
          `EpochSampler.restore: saved for size ${s.size}, seed ${s.seed}, shuffle ${s.shuffle}; ` +
            `this sampler has size ${this.size}, seed ${this.seed}, shuffle ${this.shuffle} (same data and seed?)`,
        );
      }
    }
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.index) || s.index < 0 || s.index > this.size) {
      throw new Error(`EpochSampler.restore: position epoch ${s.epoch}, index ${s.index} is outside 0..${this.size}`);
    }
    this.epoch = s.epoch;
    this.index = s.index;
  }
}
