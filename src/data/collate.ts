// Batching tokenized examples into flat, right-padded typed arrays (row-major [B, T]).
// Preference micro-batch of P pairs: B = 2P sequences, chosen_0..chosen_{P-1} then rejected_0..rejected_{P-1},
// each prompt + completion (the layout of test/fixtures/hf-tiny/*/expected.safetensors).
import type { TextTokenizer } from '../tokenizer/types.js';
import type { SftExample } from './sft.js';
import type { TokenizedPair } from './tokenize.js';

export interface CollateOptions {
  /** Id written into padding positions (masked out; any valid id). Default 0. */
  padId?: number;
  /** Round T up to a multiple of this (fewer distinct shapes for compiled kernels). Default 1. */
  padToMultipleOf?: number;
}

export interface PreferenceBatch {
  /** Sequences (2P) and padded length. */
  B: number;
  T: number;
  /** Pairs in the batch. */
  P: number;
  /** [B*T] token ids, padding = padId. */
  inputIds: Int32Array;
  /** [B*T] 1 on real tokens, 0 on padding. */
  attentionMask: Int32Array;
  /** [B*T] 1 on completion tokens (EOS included), 0 on prompt and padding; float as the loss consumes it. */
  completionMask: Float32Array;
  /** [B] prompt tokens of each sequence. */
  promptLengths: Int32Array;
  /** [B] completion tokens of each sequence (EOS included). */
  completionLengths: Int32Array;
  /** [B] real tokens of each sequence (prompt + completion). */
  seqLengths: Int32Array;
}

export interface SftBatch {
  B: number;
  T: number;
  inputIds: Int32Array;
  attentionMask: Int32Array;
  /** [B*T] 1 where the token counts in the loss (ids[promptLength..]), 0 elsewhere. */
  lossMask: Float32Array;
  seqLengths: Int32Array;
  promptLengths: Int32Array;
}

/** Pad id for batches: the tokenizer's pad token, else EOS, else 0. */
export function padIdFor(tok: Pick<TextTokenizer, 'padId' | 'eosId'>): number {
  return tok.padId ?? tok.eosId ?? 0;
}

function paddedLength(maxLen: number, multiple = 1): number {
  if (!Number.isInteger(multiple) || multiple < 1)
    throw new Error(`collate: padToMultipleOf is ${multiple}; expected a positive integer`);
  return Math.ceil(maxLen / multiple) * multiple;
}

/** Pack (prompt, completion) sequences; completion positions get mask 1. */
function pack(
  seqs: Array<{ prompt: readonly number[]; rest: readonly number[]; lossFrom: number }>,
  opts: CollateOptions,
) {
  const B = seqs.length;
  if (B === 0) throw new Error('collate: empty batch');
  const T = paddedLength(Math.max(...seqs.map((s) => s.prompt.length + s.rest.length)), opts.padToMultipleOf);
  const inputIds = new Int32Array(B * T).fill(opts.padId ?? 0);
  const attentionMask = new Int32Array(B * T);
  const lossMask = new Float32Array(B * T);
  const seqLengths = new Int32Array(B);
  seqs.forEach((s, b) => {
    const row = b * T;
    inputIds.set(s.prompt, row);
    inputIds.set(s.rest, row + s.prompt.length);
    const n = s.prompt.length + s.rest.length;
    attentionMask.fill(1, row, row + n);
    lossMask.fill(1, row + s.lossFrom, row + n);
    seqLengths[b] = n;
  });
  return { B, T, inputIds, attentionMask, lossMask, seqLengths };
}

/** Collate P preference pairs into 2P right-padded sequences (chosen first, then rejected). */
export function collatePreference(pairs: readonly TokenizedPair[], opts: CollateOptions = {}): PreferenceBatch {
  const seqs = [
    ...pairs.map((p) => ({ prompt: p.promptIds, rest: p.chosenIds, lossFrom: p.promptIds.length })),
    ...pairs.map((p) => ({ prompt: p.promptIds, rest: p.rejectedIds, lossFrom: p.promptIds.length })),
  ];
  const { B, T, inputIds, attentionMask, lossMask, seqLengths } = pack(seqs, opts);
  return {
    B,
    T,
    P: pairs.length,
    inputIds,
    attentionMask,
    completionMask: lossMask,
    promptLengths: Int32Array.from(seqs, (s) => s.prompt.length),
    completionLengths: Int32Array.from(seqs, (s) => s.rest.length),
    seqLengths,
  };
}

/** Collate SFT examples, one sequence each, loss on ids[promptLength..]. */
export function collateSft(examples: readonly SftExample[], opts: CollateOptions = {}): SftBatch {
  const seqs = examples.map((e) => ({ prompt: e.ids, rest: [] as number[], lossFrom: e.promptLength }));
  const { B, T, inputIds, attentionMask, lossMask, seqLengths } = pack(seqs, opts);
  return {
    B,
    T,
    inputIds,
    attentionMask,
    lossMask,
    seqLengths,
    promptLengths: Int32Array.from(examples, (e) => e.promptLength),
  };
}
