// numpy's np.random.default_rng(seed).permutation(n), which datasets' Dataset.shuffle(seed) draws (TRL's
// SFTConfig.shuffle_dataset): a SeedSequence hashes the seed into a PCG64 state (XSL-RR output, 128-bit
// LCG), and the permutation is a Fisher-Yates shuffle of 0..n-1 whose indices come from bounded draws by
// masked rejection (32-bit draws, two per 64-bit output, for bounds below 2^32). Checked against numpy
// by test/reference/sft.test.ts's shuffle_dataset case.
const M32 = 0xffffffffn,
  M64 = (1n << 64n) - 1n,
  M128 = (1n << 128n) - 1n;
const mul32 = (a: number, b: number): number => Math.imul(a, b) >>> 0;

/** SeedSequence(seed).generate_state(words) as uint32 words (numpy's bit_generator.pyx). */
export function seedSequenceState(seed: number, words: number): number[] {
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`seedSequenceState: seed ${seed} must be a non-negative integer`);
  const entropy: number[] = [];
  for (let s = BigInt(seed); s > 0n || entropy.length === 0; s >>= 32n) entropy.push(Number(s & M32));
  let hashConst = 0x43b0d7e5;
  const hashmix = (v: number): number => {
    v = (v ^ hashConst) >>> 0;
    hashConst = mul32(hashConst, 0x931e8875);
    v = mul32(v, hashConst);
    return (v ^ (v >>> 16)) >>> 0;
  };
  const mix = (x: number, y: number): number => {
    const r = (mul32(0xca01f9dd, x) - mul32(0x4973f715, y)) >>> 0;
    return (r ^ (r >>> 16)) >>> 0;
  };
  const pool = [0, 1, 2, 3].map((i) => hashmix(i < entropy.length ? entropy[i] : 0));
  for (let s = 0; s < 4; s++) for (let d = 0; d < 4; d++) if (s !== d) pool[d] = mix(pool[d], hashmix(pool[s]));
  for (let s = 4; s < entropy.length; s++) for (let d = 0; d < 4; d++) pool[d] = mix(pool[d], hashmix(entropy[s]));
  let h = 0x8b51f9dd;
  const out: number[] = [];
  for (let i = 0; i < words; i++) {
    let v = (pool[i % 4] ^ h) >>> 0;
    h = mul32(h, 0x58f38ded);
    v = mul32(v, h);
    out.push((v ^ (v >>> 16)) >>> 0);
  }
  return out;
}

const PCG_MULT = 0x2360ed051fc65da44385df649fccf645n;

/** numpy's PCG64 seeded by SeedSequence(seed): 64-bit outputs, and 32-bit ones from their halves (low first). */
export class Pcg64 {
  private state = 0n;
  private inc = 0n;
  private half: number | null = null;

  constructor(seed: number) {
    const w = seedSequenceState(seed, 8).map(BigInt);
    const u64 = (i: number): bigint => w[2 * i] | (w[2 * i + 1] << 32n);
    const initState = (u64(0) << 64n) | u64(1),
      initSeq = (u64(2) << 64n) | u64(3);
    this.inc = ((initSeq << 1n) | 1n) & M128;
    this.step();
    this.state = (this.state + initState) & M128;
    this.step();
  }

  private step(): void {
    this.state = (this.state * PCG_MULT + this.inc) & M128;
  }

  next64(): bigint {
    this.step();
    const x = ((this.state >> 64n) ^ this.state) & M64,
      rot = this.state >> 122n;
    return ((x >> rot) | (x << ((64n - rot) & 63n))) & M64;
  }

  next32(): number {
    if (this.half !== null) {
      const h = this.half;
      this.half = null;
      return h;
    }
    const v = this.next64();
    this.half = Number(v >> 32n);
    return Number(v & M32);
  }
}

/** np.random.default_rng(seed).permutation(n). */
export function numpyPermutation(n: number, seed: number): number[] {
  const g = new Pcg64(seed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    if (i > 0xffffffff) throw new Error(`numpyPermutation: ${n} rows is beyond 2^32`);
    let mask = i;
    for (const s of [1, 2, 4, 8, 16]) mask |= mask >>> s;
    let j: number;
    do j = (g.next32() & mask) >>> 0;
    while (j > i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
