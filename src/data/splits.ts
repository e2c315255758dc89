// Which files of a dataset folder make up a split, by the naming rules of Hugging Face `datasets`:
// a split keyword (train/training, validation/valid/val/dev, test/testing/eval/evaluation) delimited by
// start/end, '/', '-', '_', '.', ' ' or a digit, in a file or folder name: train.jsonl, train-*.parquet,
// data/train-00000-of-00001.parquet, train/part-0.jsonl. A folder whose files name no split is all "train".
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileKind } from './read.js';

export const SPLIT_KEYWORDS: Record<string, string[]> = {
  train: ['train', 'training'],
  validation: ['validation', 'valid', 'val', 'dev'],
  test: ['test', 'testing', 'eval', 'evaluation'],
};

function listDataFiles(dir: string, depth = 0): string[] {
  if (depth > 4) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...listDataFiles(p, depth + 1));
    else if (fileKind(p) !== null) out.push(p);
  }
  return out;
}

/** Split names a relative path (without extension) belongs to. */
function splitsOf(relPath: string): string[] {
  const p = relPath
    .split(sep)
    .join('/')
    .toLowerCase()
    .replace(/\.[^./]*$/, '');
  return Object.entries(SPLIT_KEYWORDS)
    .filter(([, kws]) => kws.some((kw) => new RegExp(`(^|[-._ 0-9/])${kw}([-._ 0-9/]|$)`).test(p)))
    .map(([split]) => split);
}

const natural = new Intl.Collator('en', { numeric: true });

/** The files of `split` under a dataset path (a file is its own only split). */
export function resolveSplitFiles(path: string, split = 'train'): string[] {
  if (!existsSync(path)) throw new Error(`resolveSplitFiles: ${path} does not exist`);
  if (!statSync(path).isDirectory()) return [path];
  const files = listDataFiles(path).sort((a, b) => natural.compare(a, b));
  if (files.length === 0) {
    throw new Error(`resolveSplitFiles: no .jsonl, .json or .parquet files under ${path}`);
  }
  const bySplit = new Map<string, string[]>();
  for (const f of files) {
    for (const s of splitsOf(relative(path, f))) bySplit.set(s, [...(bySplit.get(s) ?? []), f]);
  }
  if (bySplit.size === 0) bySplit.set('train', files);
  const canonical = Object.keys(SPLIT_KEYWORDS).find((k) => SPLIT_KEYWORDS[k].includes(split)) ?? split;
  const chosen = bySplit.get(canonical);
  if (!chosen) {
    throw new Error(
      `resolveSplitFiles: no '${split}' split under ${path}; found splits ` +
        `${[...bySplit.keys()].map((s) => `'${s}'`).join(', ')} in ${files.map((f) => relative(path, f)).join(', ')}`,
    );
  }
  return chosen;
}

/** Splits present under a dataset folder. */
export function listSplits(path: string): string[] {
  if (!statSync(path).isDirectory()) return ['train'];
  const found = new Set<string>();
  for (const f of listDataFiles(path)) for (const s of splitsOf(relative(path, f))) found.add(s);
  return found.size ? [...found] : ['train'];
}
