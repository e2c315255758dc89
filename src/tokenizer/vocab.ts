// Token <-> id lookups read straight from a tokenizer.json object (model vocab + added_tokens), used
// before the tokenizer itself is built (special-token ids decide its post-processor).
import type { Json } from './special.js';

export interface VocabIndex {
  tokenToId(token: string): number | null;
  idToToken(id: number): string | null;
  /** Largest id + 1. */
  size: number;
}

export function vocabIndex(tokenizerJson: Json): VocabIndex {
  const toId = new Map<string, number>();
  const model = (tokenizerJson.model ?? {}) as Json;
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...], id = position.
    vocab.forEach((entry, i) => {
      if (Array.isArray(entry)) toId.set(String(entry[0]), i);
    });
  } else if (vocab && typeof vocab === 'object') {
    for (const [tok, id] of Object.entries(vocab as Record<string, number>)) toId.set(tok, id);
  }
  for (const t of (tokenizerJson.added_tokens ?? []) as Array<{ id: number; content: string }>)
    toId.set(t.content, t.id);
  const toTok = new Map<number, string>();
  let size = 0;
  for (const [tok, id] of toId) {
    toTok.set(id, tok);
    if (id + 1 > size) size = id + 1;
  }
  return {
    tokenToId: (t) => toId.get(t) ?? null,
    idToToken: (i) => toTok.get(i) ?? null,
    size,
  };
}
