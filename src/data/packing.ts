// Packing SFT examples into rows of at most seqLength tokens, as TRL 1.13's pack_dataset does, so
// that a packed run sees the same rows (and steps) as TRL's:
//   bfd        best-fit decreasing: sequences cut to seqLength, sorted by length (longest first, ties in
//              data order), each put into the open row with the least room that fits it (the oldest
//              such row first), else into a new row. Rows keep their sequences' lengths (seqLengths):
//              each sequence attends only within itself, its positions restarting at 0.
//   bfd_split  as bfd, but a longer sequence is split into seqLength pieces (the last one shorter).
//   wrapped    every token end to end, cut every seqLength tokens; a row is one sequence (attention
//              crosses the examples it holds, as in TRL without padding_free).
// TRL packs through datasets' map in batches of 1,000 rows, so the rows of one batch never mix with
// the next's: so do we (PACK_BATCH).
import { labelsOf, type SftExample } from './sft.js';

export type PackingStrategy = 'bfd' | 'bfd_split' | 'wrapped';
export const PACKING_STRATEGIES: readonly PackingStrategy[] = ['bfd', 'bfd_split', 'wrapped'];

/** Rows datasets' map hands to one packing call (its default batch_size). */
export const PACK_BATCH = 1000;

interface Seq {
  ids: number[];
  labels: number[];
}

function packBfd(seqs: Seq[], L: number, split: boolean): SftExample[] {
  const pieces: Seq[] = [];
  for (const s of seqs) {
    if (s.ids.length === 0) continue;
    if (!split) pieces.push({ ids: s.ids.slice(0, L), labels: s.labels.slice(0, L) });
    else
      for (let a = 0; a < s.ids.length; a += L)
        pieces.push({ ids: s.ids.slice(a, a + L), labels: s.labels.slice(a, a + L) });
  }
  // Longest first; a stable sort keeps equal lengths in data order (Arrow's sort is stable).
  const order = pieces.map((_, i) => i).sort((a, b) => pieces[b].ids.length - pieces[a].ids.length);
  // Free room -> rows with exactly that much room, oldest first; room L (a new row) is always available.
  const byRoom = new Map<number, number[][]>();
  const rows: number[][] = [];
  const room = new Array<number>(L + 1).fill(0); // room[r] = rows with room r (r < L)
  for (const i of order) {
    const n = pieces[i].ids.length;
    let r = n;
    while (r < L && room[r] === 0) r++; // the smallest room >= n
    let row: number[];
    if (r < L) {
      row = byRoom.get(r)!.shift()!;
      room[r]--;
    } else {
      row = [];
      rows.push(row);
    }
    row.push(i);
    const left = r - n;
    if (!byRoom.has(left)) byRoom.set(left, []);
    byRoom.get(left)!.push(row);
    if (left > 0) room[left]++;
  }
  return rows.map((row) => {
    const ids: number[] = [],
      labels: number[] = [];
    for (const i of row) {
      ids.push(...pieces[i].ids);
      labels.push(...pieces[i].labels);
    }
    return { ids, promptLength: 0, labels, seqLengths: row.map((i) => pieces[i].ids.length) };
  });
}

function packWrapped(seqs: Seq[], L: number): SftExample[] {
  const ids = seqs.flatMap((s) => s.ids),
    labels = seqs.flatMap((s) => s.labels);
  const out: SftExample[] = [];
  for (let a = 0; a < ids.length; a += L)
    out.push({ ids: ids.slice(a, a + L), promptLength: 0, labels: labels.slice(a, a + L) });
  return out;
}

/** Pack examples into rows of at most seqLength tokens (see the top of this file). */
export function packSft(examples: readonly SftExample[], seqLength: number, strategy: PackingStrategy): SftExample[] {
  if (!Number.isInteger(seqLength) || seqLength < 1)
    throw new Error(`packSft: seqLength is ${seqLength}; packing needs max_length > 0`);
  if (!PACKING_STRATEGIES.includes(strategy))
    throw new Error(`packSft: packing_strategy '${strategy}'; expected ${PACKING_STRATEGIES.join(', ')}`);
  const out: SftExample[] = [];
  for (let a = 0; a < examples.length; a += PACK_BATCH) {
    const seqs = examples.slice(a, a + PACK_BATCH).map((e) => ({ ids: e.ids, labels: labelsOf(e) }));
    out.push(
      ...(strategy === 'wrapped' ? packWrapped(seqs, seqLength) : packBfd(seqs, seqLength, strategy === 'bfd_split')),
    );
  }
  return out;
}
