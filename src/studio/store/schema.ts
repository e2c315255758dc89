// The studio database's schema, as numbered migrations: a database records the last one applied in
// PRAGMA user_version, and opening it applies the rest in one transaction each. Append, never edit.

/** Migration i (0-based) brings the schema from version i to version i + 1. */
export const MIGRATIONS: string[] = [
  // 1: prompts, the pairs shown (both completions in the order they were shown), labels.
  `CREATE TABLE prompts (
     id INTEGER PRIMARY KEY,
     text TEXT NOT NULL UNIQUE,
     source TEXT NOT NULL,               -- the prompts file, 'typed', or 'import:<file>'
     held_out INTEGER NOT NULL DEFAULT 0, -- 1: kept for the comparison, never trained on
     created TEXT NOT NULL
   );
   CREATE TABLE pairs (
     id INTEGER PRIMARY KEY,
     prompt_id INTEGER NOT NULL REFERENCES prompts(id),
     kind TEXT NOT NULL,                 -- 'collect' (labels make training data) or 'compare' (a blind A/B of two models)
     a_text TEXT NOT NULL,               -- the completion shown on the left (key 1)
     b_text TEXT NOT NULL,               -- the completion shown on the right (key 2)
     a_source TEXT NOT NULL,             -- which model wrote it: 'policy', 'reference', 'import', ...
     b_source TEXT NOT NULL,
     swapped INTEGER NOT NULL,           -- 1: the sides were swapped from the order they were sampled in
     run TEXT,                           -- compare pairs: the run folder of the trained policy
     created TEXT NOT NULL
   );
   CREATE TABLE labels (
     id INTEGER PRIMARY KEY,
     pair_id INTEGER NOT NULL REFERENCES pairs(id),
     labeler TEXT NOT NULL,
     verdict TEXT NOT NULL CHECK (verdict IN ('a', 'b', 'tie', 'both_bad', 'edit', 'skip')),
     edited_side TEXT CHECK (edited_side IN ('a', 'b')),
     edited_text TEXT,                   -- verdict 'edit': the new text (chosen); the original side is rejected
     undone INTEGER NOT NULL DEFAULT 0,  -- 1: taken back with U (kept, never exported)
     created TEXT NOT NULL
   );
   CREATE INDEX labels_by_labeler ON labels(labeler, undone);
   CREATE INDEX labels_by_pair ON labels(pair_id);
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
