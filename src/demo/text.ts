// Text clean-up for the demo corpus: whitespace and punctuation normalisation, a rule-based
// sentence splitter, sentence-bounded chunking, and the hash split into train / held-out.
// Everything here is a pure function of its input, so the corpus is the same on every machine.
import { mulberry32 } from '../core/random.js';

// Windows-1252 characters that show up as C1 control codes in the review fixtures
// ("\x96" for a dash, "\x85" for an ellipsis): text decoded as Latin-1 by mistake.
const CP1252: Record<string, string> = {
  '\x85': '...',
  '\x91': "'",
  '\x92': "'",
  '\x93': '"',
  '\x94': '"',
  '\x96': '-',
  '\x97': '-',
};
// Typographic punctuation folded to ASCII so that the tiny model sees one spelling of each.
const TYPOGRAPHIC: Record<string, string> = {
  '\u2018': "'",
  '\u2019': "'",
  '\u201c': '"',
  '\u201d': '"',
  '\u2013': '-',
  '\u2014': ' - ',
  '\u2011': '-',
  '\u2026': '...',
  '\u00a0': ' ',
};

/**
 * One line of clean text: Unicode NFC, mis-decoded Windows-1252 and typographic punctuation
 * mapped to ASCII, Gutenberg's `--` dashes spaced and `_italics_` marks removed, every whitespace run
 * (newlines included) collapsed to one space, trimmed. Never contains "\n".
 */
export function normalizeText(s: string): string {
  let t = s.normalize('NFC');
  t = t.replace(/[\x85\x91-\x94\x96\x97]/g, (c) => CP1252[c]!);
  t = t.replace(/[\u2018\u2019\u201c\u201d\u2013\u2014\u2011\u2026\u00a0]/g, (c) => TYPOGRAPHIC[c]!);
  t = t.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]/g, ' '); // other control characters
  t = t.replace(/\s*--+\s*/g, ' - ');
  t = t.replace(/_/g, ''); // Gutenberg's _italics_; no source uses "_" otherwise
  return t.replace(/\s+/g, ' ').trim();
}

/** Share of the characters that are letters (junk filter: tables, numbers, ascii art score low). */
export function letterRatio(s: string): number {
  if (s.length === 0) return 0;
  const letters = s.match(/\p{L}/gu);
  return (letters ? letters.length : 0) / s.length;
}

export function wordCount(s: string): number {
  const m = s.match(/\S+/g);
  return m ? m.length : 0;
}

// Words after which a full stop does not end a sentence.
const ABBREVIATIONS = new Set([
  'mr',
  'mrs',
  'ms',
  'dr',
  'st',
  'jr',
  'sr',
  'vs',
  'etc',
  'no',
  'co',
  'gen',
  'gov',
  'rev',
  'capt',
  'col',
  'lt',
  'sgt',
  'prof',
  'hon',
  'messrs',
  'mt',
  'u.s',
  'e.g',
  'i.e',
  'a.m',
  'p.m',
]);

/**
 * Splits normalised text into sentences: a break follows `.`, `!` or `?` (plus closing quotes or
 * brackets) when the next word starts with a capital, a digit or an opening quote, and the word
 * before the full stop is not a known abbreviation or a single capital (an initial).
 */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  const re = /[.!?]+["')\]]*\s+(?=["'(\[]?[\p{Lu}\p{N}])/gu;
  let start = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const end = m.index + m[0].trimEnd().length;
    const before = text.slice(start, m.index).match(/(\S+)$/);
    const last = before ? before[1]!.toLowerCase().replace(/^["'(\[]+/, '') : '';
    if (text[m.index] === '.' && (ABBREVIATIONS.has(last) || /^\p{Lu}$/u.test(before?.[1] ?? ''))) {
      continue;
    }
    out.push(text.slice(start, end));
    start = m.index + m[0].length;
  }
  if (start < text.length) out.push(text.slice(start));
  return out.filter((s) => s.length > 0);
}

/**
 * Groups consecutive sentences into chunks of at most `maxChars` characters (a single longer
 * sentence is its own chunk), joined by one space: long paragraphs and whole speeches become
 * documents of a size a small model's context can use.
 */
export function chunkSentences(sentences: string[], maxChars: number): string[] {
  const chunks: string[] = [];
  let cur = '';
  for (const s of sentences) {
    if (cur.length > 0 && cur.length + 1 + s.length > maxChars) {
      chunks.push(cur);
      cur = '';
    }
    cur = cur.length > 0 ? `${cur} ${s}` : s;
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}

/** 32-bit FNV-1a over the UTF-16 code units of `s`: a stable, platform-independent hash. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finaliser: spreads FNV-1a's weakly mixed high bits (similar texts differ low). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Whether a document belongs to the held-out split: decided by the hash of its text alone, so a
 * sentence lands on the same side in every build, in the corpus and in the prompt sets alike.
 */
export function isHeldOut(text: string, fraction: number): boolean {
  return fmix32(fnv1a(text)) / 0x100000000 < fraction;
}

/** Fisher-Yates shuffle of a copy of `xs` with a seeded generator. */
export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = xs.slice();
  const rand = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
