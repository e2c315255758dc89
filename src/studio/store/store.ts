// The studio's SQLite store (better-sqlite3): prompts, the pairs shown to labelers, their labels,
// and the TRL-format rows they make. WAL journal with synchronous=FULL, and every write is one
// statement or one transaction that has committed before the call returns: a server killed with
// kill -9 after answering a request has lost nothing it answered.
import Database from 'better-sqlite3';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

export type Verdict = 'a' | 'b' | 'tie' | 'both_bad' | 'edit' | 'skip';
export const VERDICTS: readonly Verdict[] = ['a', 'b', 'tie', 'both_bad', 'edit', 'skip'];
export type PairKind = 'collect' | 'compare';

export interface Prompt {
  id: number;
  text: string;
  source: string;
  held_out: number;
}
export interface Pair {
  id: number;
  prompt_id: number;
  prompt: string;
  kind: PairKind;
  a_text: string;
  b_text: string;
  a_source: string;
  b_source: string;
  swapped: number;
  run: string | null;
}
export interface LabelInput {
  pairId: number;
  labeler: string;
  verdict: Verdict;
  editedSide?: 'a' | 'b';
  editedText?: string;
}

/** One training row in TRL's standard format; `verdict` only on the tie / both-bad rows asked for. */
export interface PreferenceRow {
  prompt: string;
  chosen: string;
  rejected: string;
  verdict?: 'tie' | 'both_bad';
}

export interface Progress {
  prompts: number;
  /** Labels (not undone, not skipped) by this labeler / by everyone, on collect pairs. */
  mine: number;
  total: number;
  /** Collect labels by verdict (everyone, not undone). */
  verdicts: Record<Verdict, number>;
  labelers: string[];
}

export interface Agreement {
  /** Pairs labeled by two labelers or more (skips left out; a labeler's latest label counts). */
  pairs: number;
  /** Share of the labeler pairs on those pairs that gave the same verdict (null without overlap). */
  rate: number | null;
  byLabelers: { a: string; b: string; overlap: number; agree: number }[];
}

const now = (): string => new Date().toISOString();

export class Store {
  readonly db: Database.Database;

  constructor(readonly file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL'); // a commit reaches the disk before the statement returns
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  /** Applies the migrations this database has not seen yet; refuses a database from a newer tsdpo. */
  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `${this.file}: schema version ${version} is newer than this tsdpo's (${SCHEMA_VERSION}); update tsdpo`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  close(): void {
    this.db.close();
  }

  setting(key: string): string | null {
    const r = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value ?? null;
  }

  setSetting(key: string, value: string): void {
    this.db
      .prepare('INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value')
      .run(key, value);
  }

  /** Adds prompts (a repeated text is kept once); returns how many were new. */
  addPrompts(texts: readonly string[], source: string, heldOut = false): number {
    const insert = this.db.prepare(
      'INSERT OR IGNORE INTO prompts(text, source, held_out, created) VALUES (?, ?, ?, ?)',
    );
    return this.db.transaction(() => {
      let added = 0;
      for (const t of texts) if (t.trim() !== '') added += insert.run(t, source, heldOut ? 1 : 0, now()).changes;
      return added;
    })();
  }

  prompts(heldOut?: boolean): Prompt[] {
    const where = heldOut === undefined ? '' : `WHERE held_out = ${heldOut ? 1 : 0}`;
    return this.db.prepare(`SELECT id, text, source, held_out FROM prompts ${where} ORDER BY id`).all() as Prompt[];
  }

  /** Marks every `every`-th training prompt as held out (for the comparison), unless some already are. */
  holdOut(every: number): number {
    if (every <= 0 || this.prompts(true).length > 0) return 0;
    return this.db
      .prepare(
        `UPDATE prompts SET held_out = 1 WHERE held_out = 0 AND id % ? = 0
      AND id NOT IN (SELECT prompt_id FROM pairs)`,
      )
      .run(every).changes;
  }

  /** The prompt of `kind` with the fewest pairs so far (held-out prompts for 'compare', the others for 'collect'). */
  nextPrompt(kind: PairKind, run: string | null = null): Prompt | null {
    const held = kind === 'compare' ? 1 : 0;
    return (
      (this.db
        .prepare(
          `SELECT p.id, p.text, p.source, p.held_out FROM prompts p
      LEFT JOIN pairs q ON q.prompt_id = p.id AND q.kind = ? AND (q.run IS ? OR q.run = ?)
      WHERE p.held_out = ? GROUP BY p.id ORDER BY COUNT(q.id), p.id LIMIT 1`,
        )
        .get(kind, run, run, held) as Prompt | undefined) ?? null
    );
  }

  addPair(p: Omit<Pair, 'id' | 'prompt'>): Pair {
    const r = this.db
      .prepare(
        `INSERT INTO pairs(prompt_id, kind, a_text, b_text, a_source, b_source, swapped, run, created)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(p.prompt_id, p.kind, p.a_text, p.b_text, p.a_source, p.b_source, p.swapped, p.run, now());
    return this.pair(Number(r.lastInsertRowid))!;
  }

  pair(id: number): Pair | null {
    return (
      (this.db
        .prepare(`SELECT q.*, p.text AS prompt FROM pairs q JOIN prompts p ON p.id = q.prompt_id WHERE q.id = ?`)
        .get(id) as Pair | undefined) ?? null
    );
  }

  /** The oldest pair of `kind` this labeler has no standing label on (another labeler's pair first: overlap). */
  pendingPair(labeler: string, kind: PairKind, run: string | null = null): Pair | null {
    const r = this.db
      .prepare(
        `SELECT q.id FROM pairs q WHERE q.kind = ? AND (q.run IS ? OR q.run = ?)
      AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.pair_id = q.id AND l.labeler = ? AND l.undone = 0)
      ORDER BY q.id LIMIT 1`,
      )
      .get(kind, run, run, labeler) as { id: number } | undefined;
    return r ? this.pair(r.id) : null;
  }

  /** Saves a label (committed when this returns) and its id. */
  label(l: LabelInput): number {
    if (!VERDICTS.includes(l.verdict))
      throw new Error(`label: verdict '${String(l.verdict)}' is not one of ${VERDICTS.join(', ')}`);
    if (!l.labeler || l.labeler.length > 100) throw new Error('label: a labeler name (1-100 characters) is required');
    const pair = this.pair(l.pairId);
    if (!pair) throw new Error(`label: no pair ${l.pairId}`);
    if (l.verdict === 'edit' && l.editedText === (l.editedSide === 'a' ? pair.a_text : pair.b_text)) {
      throw new Error(`label: the edit of side ${l.editedSide} is the original text; change it, or pick a verdict`);
    }
    if (
      l.verdict === 'edit' &&
      (typeof l.editedText !== 'string' || l.editedText.trim() === '' || (l.editedSide !== 'a' && l.editedSide !== 'b'))
    ) {
      throw new Error("label: an edit needs editedSide ('a' or 'b') and a non-empty editedText");
    }
    const r = this.db
      .prepare(
        `INSERT INTO labels(pair_id, labeler, verdict, edited_side, edited_text, created) VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(
        l.pairId,
        l.labeler,
        l.verdict,
        l.verdict === 'edit' ? l.editedSide : null,
        l.verdict === 'edit' ? l.editedText : null,
        now(),
      );
    return Number(r.lastInsertRowid);
  }

  /** Takes back this labeler's latest standing label of `kind`; returns its pair, or null when there is none. */
  undo(labeler: string, kind: PairKind = 'collect'): Pair | null {
    return this.db.transaction(() => {
      const r = this.db
        .prepare(
          `SELECT l.id, l.pair_id FROM labels l JOIN pairs q ON q.id = l.pair_id
        WHERE l.labeler = ? AND l.undone = 0 AND q.kind = ? ORDER BY l.id DESC LIMIT 1`,
        )
        .get(labeler, kind) as { id: number; pair_id: number } | undefined;
      if (!r) return null;
      this.db.prepare('UPDATE labels SET undone = 1 WHERE id = ?').run(r.id);
      return this.pair(r.pair_id);
    })();
  }

  progress(labeler: string): Progress {
    const rows = this.db
      .prepare(
        `SELECT l.labeler, l.verdict, COUNT(*) AS n FROM labels l JOIN pairs q ON q.id = l.pair_id
      WHERE l.undone = 0 AND q.kind = 'collect' GROUP BY l.labeler, l.verdict`,
      )
      .all() as { labeler: string; verdict: Verdict; n: number }[];
    const verdicts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
    let mine = 0,
      total = 0;
    for (const r of rows) {
      verdicts[r.verdict] += r.n;
      if (r.verdict === 'skip') continue;
      total += r.n;
      if (r.labeler === labeler) mine += r.n;
    }
    const prompts = (this.db.prepare('SELECT COUNT(*) AS n FROM prompts WHERE held_out = 0').get() as { n: number }).n;
    return { prompts, mine, total, verdicts, labelers: [...new Set(rows.map((r) => r.labeler))].sort() };
  }

  /**
   * TRL rows from the standing labels of collect pairs, one per label, in label order: A/B better ->
   * (chosen, rejected); an edit -> (edited text, the original of that side). Ties and both-bad rows
   * only when asked (chosen = the left completion, with a `verdict` field saying which it was).
   */
  exportRows(opts: { ties?: boolean; bothBad?: boolean } = {}): PreferenceRow[] {
    const rows = this.db
      .prepare(
        `SELECT l.verdict, l.edited_side, l.edited_text, q.a_text, q.b_text, p.text AS prompt
      FROM labels l JOIN pairs q ON q.id = l.pair_id JOIN prompts p ON p.id = q.prompt_id
      WHERE l.undone = 0 AND q.kind = 'collect' ORDER BY l.id`,
      )
      .all() as {
      verdict: Verdict;
      edited_side: 'a' | 'b' | null;
      edited_text: string | null;
      a_text: string;
      b_text: string;
      prompt: string;
    }[];
    const out: PreferenceRow[] = [];
    for (const r of rows) {
      if (r.verdict === 'a') out.push({ prompt: r.prompt, chosen: r.a_text, rejected: r.b_text });
      else if (r.verdict === 'b') out.push({ prompt: r.prompt, chosen: r.b_text, rejected: r.a_text });
      else if (r.verdict === 'edit')
        out.push({ prompt: r.prompt, chosen: r.edited_text!, rejected: r.edited_side === 'a' ? r.a_text : r.b_text });
      else if ((r.verdict === 'tie' && opts.ties) || (r.verdict === 'both_bad' && opts.bothBad)) {
        out.push({ prompt: r.prompt, chosen: r.a_text, rejected: r.b_text, verdict: r.verdict });
      }
    }
    return out;
  }

  /** Imports preference rows as labeled collect pairs (labeler `labeler`, verdict 'a': chosen on the left). */
  importRows(
    rows: readonly { prompt: string; chosen: string; rejected: string }[],
    source: string,
    labeler: string,
  ): number {
    return this.db.transaction(() => {
      this.addPrompts(
        rows.map((r) => r.prompt),
        source,
      );
      const promptId = this.db.prepare('SELECT id FROM prompts WHERE text = ?');
      for (const r of rows) {
        const { id } = promptId.get(r.prompt) as { id: number };
        const pair = this.addPair({
          prompt_id: id,
          kind: 'collect',
          a_text: r.chosen,
          b_text: r.rejected,
          a_source: 'import',
          b_source: 'import',
          swapped: 0,
          run: null,
        });
        this.label({ pairId: pair.id, labeler, verdict: 'a' });
      }
      return rows.length;
    })();
  }

  /**
   * Agreement between labelers on the collect pairs two or more of them labeled (latest standing label each, skips
   * out).
   */
  agreement(): Agreement {
    const rows = this.db
      .prepare(
        `SELECT l.pair_id, l.labeler, l.verdict FROM labels l JOIN pairs q ON q.id = l.pair_id
      WHERE l.undone = 0 AND l.verdict != 'skip' AND q.kind = 'collect' ORDER BY l.id`,
      )
      .all() as { pair_id: number; labeler: string; verdict: Verdict }[];
    const byPair = new Map<number, Map<string, Verdict>>();
    for (const r of rows) {
      if (!byPair.has(r.pair_id)) byPair.set(r.pair_id, new Map());
      byPair.get(r.pair_id)!.set(r.labeler, r.verdict);
    }
    const stats = new Map<string, { a: string; b: string; overlap: number; agree: number }>();
    let pairs = 0,
      comparisons = 0,
      agree = 0;
    for (const m of byPair.values()) {
      if (m.size < 2) continue;
      pairs++;
      const names = [...m.keys()].sort();
      for (let i = 0; i < names.length; i++)
        for (let j = i + 1; j < names.length; j++) {
          const key = `${names[i]}\u0000${names[j]}`;
          const s = stats.get(key) ?? { a: names[i], b: names[j], overlap: 0, agree: 0 };
          const same = m.get(names[i]) === m.get(names[j]) ? 1 : 0;
          s.overlap++;
          s.agree += same;
          comparisons++;
          agree += same;
          stats.set(key, s);
        }
    }
    return { pairs, rate: comparisons > 0 ? agree / comparisons : null, byLabelers: [...stats.values()] };
  }

  /**
   * The blind comparison of a run: each standing judgment of a compare pair scores the policy 1 (its
   * completion preferred), 0 (the reference's) or 1/2 (tie or both bad); the win rate is their mean
   * and its standard error the sample standard deviation over sqrt(n).
   */
  compareResult(run: string): { n: number; winRate: number | null; stderr: number | null } {
    const rows = this.db
      .prepare(
        `SELECT l.verdict, q.a_source, q.b_source FROM labels l JOIN pairs q ON q.id = l.pair_id
      WHERE l.undone = 0 AND q.kind = 'compare' AND q.run = ? AND l.verdict IN ('a', 'b', 'tie', 'both_bad')`,
      )
      .all(run) as { verdict: Verdict; a_source: string; b_source: string }[];
    const scores = rows.map((r) =>
      r.verdict === 'a' ? Number(r.a_source === 'policy') : r.verdict === 'b' ? Number(r.b_source === 'policy') : 0.5,
    );
    return meanAndStderr(scores);
  }
}

/** Mean and standard error (sample standard deviation / sqrt(n)) of scores; nulls when there are none. */
export function meanAndStderr(scores: readonly number[]): { n: number; winRate: number | null; stderr: number | null } {
  const n = scores.length;
  if (n === 0) return { n, winRate: null, stderr: null };
  const mean = scores.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? scores.reduce((a, s) => a + (s - mean) ** 2, 0) / (n - 1) : 0;
  return { n, winRate: mean, stderr: Math.sqrt(variance / n) };
}
