// The example order of transformers' Trainer: accelerate's SeedableRandomSampler draws epoch e's
// order as torch.randperm(n) from a CPU generator seeded with seed + e, and torch's CPU randperm
// (for n < 2^32 / 20) is a forward Fisher-Yates shuffle driven by the generator's MT19937 stream:
// for i in 0..n-2: swap(r[i], r[i + u32() % (n - i)]). Reproduced here so that tsdpo and TRL
// train on the same batches (checked against torch by test/reference).

/** MT19937 (32-bit Mersenne Twister), seeded as std::mt19937 / torch's at::mt19937 (the low 32 bits of the seed). */
export class Mt19937 {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const x = mt[i - 1] ^ (mt[i - 1] >>> 30);
      mt[i] = (Math.imul(1812433253, x) + i) >>> 0;
    }
  }

  /** The next 32-bit output. */
  next(): number {
    const mt = this.mt;
    if (this.index >= 624) {
      for (let i = 0; i < 624; i++) {
        const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
        mt[i] = mt[(i + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}

/** torch.randperm(n, generator=torch.Generator().manual_seed(seed)). */
export function torchRandperm(n: number, seed: number): Int32Array {
  if (n >= 0xffffffff / 20)
    throw new Error(`torchRandperm: n = ${n} is past the small-n algorithm torch uses below 2^32 / 20`);
  const r = Int32Array.from({ length: n }, (_, i) => i);
  const g = new Mt19937(seed);
  for (let i = 0; i < n - 1; i++) {
    const z = g.next() % (n - i);
    const t = r[i];
    r[i] = r[i + z];
    r[i + z] = t;
  }
  return r;
}

/** Epoch e's order in transformers' Trainer with TrainingArguments seed `seed` (data_seed unset). */
export function trainerEpochOrder(size: number, seed: number, epoch: number): Int32Array {
  return torchRandperm(size, seed + epoch);
}
