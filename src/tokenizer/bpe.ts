// A byte-level BPE encoder / decoder of our own (GPT-2's `bpe()` from openai/gpt-2 encoder.py):
// special tokens are cut out first, the rest is split by GPT-2's regex, each piece is written in
// byte characters and merged by rank, lowest rank first. It gives the same ids as Hugging Face's
// tokenizers on the tokenizer.json files written by hf-json.ts (test/demo checks it).
import { BpeModel } from './bpe-train.js';
import { charsToText, preTokenize } from './byte-level.js';

export class ByteLevelBpe {
  readonly vocab: readonly string[];
  private readonly ids: Map<string, number>;
  private readonly ranks: Map<string, number>; // "a b" -> rank
  private readonly special: Map<string, number>; // content -> id
  private readonly cache = new Map<string, number[]>();

  constructor(model: BpeModel) {
    this.vocab = model.vocab;
    this.ids = new Map(model.vocab.map((t, i) => [t, i]));
    this.ranks = new Map(model.merges.map(([a, b], i) => [`${a} ${b}`, i]));
    this.special = new Map(model.specialTokens.map((t) => [t.content, t.id]));
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  /** Id of a special token such as <|endoftext|>. */
  specialId(content: string): number {
    const id = this.special.get(content);
    if (id === undefined)
      throw new Error(
        `ByteLevelBpe.specialId: no special token "${content}" (have ${[...this.special.keys()].join(', ')})`,
      );
    return id;
  }

  /** Token ids of `text`; special tokens written in the text become their ids. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const part of this.splitSpecial(text)) {
      const sid = this.special.get(part);
      if (sid !== undefined) {
        out.push(sid);
        continue;
      }
      for (const piece of preTokenize(part)) out.push(...this.bpe(piece));
    }
    return out;
  }

  /** Text of `ids`: special tokens verbatim (or dropped with skipSpecial), the rest as UTF-8 bytes. */
  decode(ids: readonly number[], skipSpecial = false): string {
    let out = '';
    let chars = '';
    for (const id of ids) {
      const t = this.vocab[id];
      if (t === undefined)
        throw new Error(`ByteLevelBpe.decode: id ${id} is outside the vocabulary (size ${this.vocab.length})`);
      if (this.special.has(t) && this.special.get(t) === id) {
        out += charsToText(chars);
        chars = '';
        if (!skipSpecial) out += t;
      } else {
        chars += t;
      }
    }
    return out + charsToText(chars);
  }

  // Cuts text at special-token occurrences (leftmost, longest first) and keeps them as parts.
  private splitSpecial(text: string): string[] {
    if (this.special.size === 0) return [text];
    const contents = [...this.special.keys()].sort((a, b) => b.length - a.length);
    const re = new RegExp(contents.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
    const parts: string[] = [];
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (m.index! > last) parts.push(text.slice(last, m.index));
      parts.push(m[0]);
      last = m.index! + m[0].length;
    }
    if (last < text.length) parts.push(text.slice(last));
    return parts;
  }

  // Merges one pre-tokenised piece (in byte characters) by rank; returns its ids.
  private bpe(piece: string): number[] {
    const hit = this.cache.get(piece);
    if (hit !== undefined) return hit;
    let word = Array.from(piece);
    for (;;) {
      let best = -1,
        bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = [word[best]!, word[best + 1]!];
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(word[i]!);
      }
      word = next;
    }
    const ids = word.map((t) => {
      const id = this.ids.get(t);
      if (id === undefined) throw new Error(`ByteLevelBpe: token "${t}" made by the merges is not in the vocabulary`);
      return id;
    });
    if (this.cache.size < 100_000) this.cache.set(piece, ids);
    return ids;
  }
}
