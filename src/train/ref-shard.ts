// The reference log-prob pass (precompute_ref_log_probs) split over processes or machines: a run
// with `--shard i/n` computes part i of n (whole batches, so each part runs exactly the batches the
// whole pass runs), writes it beside the cache file as <cache>.shard-i-of-n.json and stops before
// training. A later run without --shard finds all n parts, concatenates them into the cache (the
// merge step) and trains: the same numbers as one unsharded pass.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.js';
import { shardRange, type Shard } from '../eval/shard.js';

type Log = (line: string) => void;

const shardFile = (cache: string, s: Shard): string =>
  `${cache.replace(/\.json$/, '')}.shard-${s.index}-of-${s.count}.json`;

const readRows = (file: string): Float64Array[] =>
  (JSON.parse(readFileSync(file, 'utf8')) as number[][]).map((r) => Float64Array.from(r));

/** The complete shard sets of `cache` on disk: for each n with all parts 0..n-1, their files in order. */
function completeShards(cache: string): string[] | null {
  const dir = dirname(cache),
    stem = basename(cache).replace(/\.json$/, '');
  if (!existsSync(dir)) return null;
  const byCount = new Map<number, Map<number, string>>();
  for (const name of readdirSync(dir)) {
    const m = /^(.*)\.shard-(\d+)-of-(\d+)\.json$/.exec(name);
    if (!m || m[1] !== stem) continue;
    const n = Number(m[3]);
    if (!byCount.has(n)) byCount.set(n, new Map());
    byCount.get(n)!.set(Number(m[2]), join(dir, name));
  }
  for (const [n, parts] of byCount) if (parts.size === n) return Array.from({ length: n }, (_, i) => parts.get(i)!);
  return null;
}

/**
 * Reference log-probs of `count` examples, cached in `cache`. With `shard`, only that part is computed
 * (compute(start, end) over whole batches of `batchSize`) and written; the result is then null (the
 * caller stops). Without, the cache is read, or merged from a complete set of shards, or computed.
 */
export async function shardedReference(
  cache: string,
  count: number,
  batchSize: number,
  shard: Shard | null,
  compute: (start: number, end: number) => Promise<Float64Array[]>,
  log: Log,
): Promise<Float64Array[] | null> {
  if (shard) {
    const [start, end] = shardRange(count, shard, batchSize);
    const file = shardFile(cache, shard);
    const rows = existsSync(file) ? null : await compute(start, end);
    if (rows) {
      mkdirSync(dirname(file), { recursive: true });
      writeJsonAtomic(
        file,
        rows.map((r) => Array.from(r)),
      );
    }
    log(
      `reference log-probs: examples ${start}..${end - 1} of ${count} (part ` +
        `${shard.index}/${shard.count}) ${rows ? 'written to' : 'already in'} ${file}`,
    );
    return null;
  }
  if (existsSync(cache)) {
    log(`reference log-probs: reusing ${cache}`);
    return readRows(cache);
  }
  const parts = completeShards(cache);
  const values = parts ? parts.flatMap(readRows) : await compute(0, count);
  if (values.length !== count)
    throw new Error(
      `reference log-probs: the shards ${parts?.join(', ')} hold ${values.length} examples, the data ${count}`,
    );
  mkdirSync(dirname(cache), { recursive: true });
  writeJsonAtomic(
    cache,
    values.map((r) => Array.from(r)),
  );
  log(
    parts
      ? `reference log-probs: merged ${parts.length} shards into ${cache}`
      : `reference log-probs: cached in ${cache}`,
  );
  return values;
}
