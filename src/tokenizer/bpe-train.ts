// Trains a byte-level BPE tokenizer (GPT-2 style; Sennrich et al. 2016, Radford et al. 2019):
// start from the 256 bytes, repeatedly merge the most frequent adjacent pair of symbols inside
// pre-tokenised words, until the vocabulary has the requested size. Deterministic: ties between
// equally frequent pairs go to the pair of smaller ids (left id first), so the result depends
// only on the multiset of words in the corpus, not on its order.
import { BYTE_TO_CHAR, GPT2_SPLIT } from './byte-level.js';

export const EOS_TOKEN = '<|endoftext|>';

export interface BpeTrainOptions {
  vocabSize: number; // total vocabulary: 256 bytes + merges + special tokens
  minFrequency: number; // a pair seen fewer times than this is never merged
  specialTokens: string[]; // added after the merged tokens, so they get the last ids
}

export const DEFAULT_BPE_TRAIN: BpeTrainOptions = {
  vocabSize: 2048,
  minFrequency: 2,
  specialTokens: [EOS_TOKEN], // GPT-2's layout: <|endoftext|> is the last id (2047 here)
};

/** A trained byte-level BPE: `vocab[id]` is a token in byte characters (or a special token). */
export interface BpeModel {
  vocab: string[];
  merges: [string, string][]; // in rank order: merges[0] is applied first
  specialTokens: { id: number; content: string }[];
}

// Max-heap of (count, pair key), ties to the smaller key. Entries go stale when a count changes;
// every change pushes the new count, and a popped entry whose count is no longer current is skipped.
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!,
      cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    for (let i = this.counts.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastC = this.counts.pop()!,
      lastK = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      for (let i = 0; ;) {
        const l = 2 * i + 1,
          r = l + 1;
        let m = i;
        if (l < this.counts.length && this.above(l, m)) m = l;
        if (r < this.counts.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

const KEY = 65536; // pair (a, b) -> a * KEY + b; ids stay below 2^16

/** Counts of the GPT-2 pieces of `docs` (special tokens cut out first, as at encoding time). */
export function countWords(docs: Iterable<string>, specialTokens: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const doc of docs) {
    let parts = [doc];
    for (const sp of specialTokens) parts = parts.flatMap((p) => p.split(sp));
    for (const part of parts) {
      for (const piece of part.match(GPT2_SPLIT) ?? []) counts.set(piece, (counts.get(piece) ?? 0) + 1);
    }
  }
  return counts;
}

/** Trains on word counts (from countWords) — see the file comment for the rule. */
export function trainBpeFromCounts(wordCounts: Map<string, number>, options: Partial<BpeTrainOptions> = {}): BpeModel {
  const o: BpeTrainOptions = { ...DEFAULT_BPE_TRAIN, ...options };
  const target = o.vocabSize - o.specialTokens.length;
  if (!Number.isInteger(o.vocabSize) || target < 256 || o.vocabSize > KEY) {
    throw new Error(
      `trainBpe: vocabSize ${o.vocabSize} must be an integer in [${256 + o.specialTokens.length}, ${KEY}] ` +
        `(256 bytes + ${o.specialTokens.length} special tokens at least)`,
    );
  }
  const utf8 = new TextEncoder();
  const syms: Int32Array[] = []; // symbols of each distinct word (a prefix of length lens[w] is live)
  const lens: number[] = [];
  const freq: number[] = [];
  for (const [w, c] of wordCounts) {
    const bytes = utf8.encode(w);
    syms.push(Int32Array.from(bytes));
    lens.push(bytes.length);
    freq.push(c);
  }
  const tokens: string[] = BYTE_TO_CHAR.slice();
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  const merges: [string, string][] = [];

  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>(); // pair -> words that contain (or once contained) it
  const add = (key: number, n: number) => pairCount.set(key, (pairCount.get(key) ?? 0) + n);
  for (let w = 0; w < syms.length; w++) {
    const s = syms[w]!;
    for (let i = 0; i + 1 < lens[w]!; i++) {
      const key = s[i]! * KEY + s[i + 1]!;
      add(key, freq[w]!);
      const list = where.get(key);
      if (list === undefined) where.set(key, [w]);
      else if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(c, key);

  const visited = new Int32Array(syms.length).fill(-1);
  while (tokens.length < target && heap.size > 0) {
    const [count, key] = heap.pop();
    if (pairCount.get(key) !== count) continue; // stale entry
    if (count < o.minFrequency) break;
    const a = Math.floor(key / KEY),
      b = key % KEY;
    const merged = tokens[a]! + tokens[b]!;
    let id = idOf.get(merged);
    if (id === undefined) {
      // a string can arise from two different merges: keep one id
      id = tokens.length;
      tokens.push(merged);
      idOf.set(merged, id);
    }
    merges.push([tokens[a]!, tokens[b]!]);
    const changed = new Set<number>();
    for (const w of where.get(key) ?? []) {
      if (visited[w] === merges.length) continue;
      visited[w] = merges.length;
      const s = syms[w]!,
        n = lens[w]!,
        f = freq[w]!;
      let found = false;
      for (let i = 0; i + 1 < n; i++)
        if (s[i] === a && s[i + 1] === b) {
          found = true;
          break;
        }
      if (!found) continue;
      for (let i = 0; i + 1 < n; i++) {
        const k = s[i]! * KEY + s[i + 1]!;
        add(k, -f);
        changed.add(k);
      }
      let m = 0; // merge left to right, non-overlapping, in place
      for (let i = 0; i < n; i++) {
        if (i + 1 < n && s[i] === a && s[i + 1] === b) {
          s[m++] = id;
          i++;
        } else s[m++] = s[i]!;
      }
      lens[w] = m;
      for (let i = 0; i + 1 < m; i++) {
        const k = s[i]! * KEY + s[i + 1]!;
        add(k, f);
        changed.add(k);
        if (s[i] === id || s[i + 1] === id) {
          const list = where.get(k);
          if (list === undefined) where.set(k, [w]);
          else if (list[list.length - 1] !== w) list.push(w);
        }
      }
    }
    pairCount.delete(key);
    where.delete(key);
    for (const k of changed) {
      const c = pairCount.get(k);
      if (c === undefined || c <= 0) pairCount.delete(k);
      else if (k !== key) heap.push(c, k);
    }
  }
  const specialTokens = o.specialTokens.map((content, i) => ({ id: tokens.length + i, content }));
  return { vocab: [...tokens, ...o.specialTokens], merges, specialTokens };
}

/** Trains a byte-level BPE on documents (a document repeated n times weighs n times). */
export function trainBpe(docs: Iterable<string>, options: Partial<BpeTrainOptions> = {}): BpeModel {
  const o = { ...DEFAULT_BPE_TRAIN, ...options };
  return trainBpeFromCounts(countWords(docs, o.specialTokens), o);
}
