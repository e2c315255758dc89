// Supervised fine-tuning: next-token cross-entropy on the tokens each example marks (the
// completion, the assistant's turns, or every token of plain text), averaged over those tokens as
// TRL's SFTTrainer does; loss_type dft weights each token's term by its detached probability.
// Packed rows (and padding_free batches) hold several sequences, each attending only within itself
// with positions from 0: TRL gets that from transformers' block-diagonal mask over restarting
// position ids; tsdpo runs each such sequence as its own row of the micro-batch, which gives the same
// numbers (tsdpo's attention has no segment mask).
import {
  affine,
  backward,
  detach,
  embedding,
  exp,
  mul,
  noGrad,
  reshape,
  sum,
  tensor,
  tidyAsync,
} from '../core/index.js';
import { padIdFor } from '../data/collate.js';
import { numpyPermutation } from '../data/numpy-order.js';
import { packSft, type PackingStrategy } from '../data/packing.js';
import type { LoadOptions } from '../data/pipeline.js';
import { labelsOf, type SftDataOptions, type SftDataset, type SftExample } from '../data/sft.js';
import type { CausalLM } from '../models/model.js';
import type { LoraDropout } from '../nn/linear.js';
import { ChatTemplateRenderer } from '../tokenizer/chat-template.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { headLogps } from './chunked-head.js';
import type { SftConfig } from './config.js';
import { positionStats, STAT_COLUMNS, targetIsArgmax } from './logps.js';
import type { NamedParam } from './optim.js';
import { batchesOf, type MicroResult, type Objective } from './loop.js';

/** The options the objective reads (the demo passes a DPO config, whose loss_type is a list). */
export type SftObjectiveConfig = Omit<SftConfig, 'loss_type'> & { loss_type: string | string[] };

export interface SftParts {
  cfg: SftObjectiveConfig;
  policy: CausalLM;
  params: NamedParam[];
  train: SftDataset;
  eval: SftDataset | null;
  padId: number;
  /** LoRA dropout probability while training (0 without an adapter). */
  loraDropout: number;
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
}

/**
 * TRL's SFT metrics over the scored positions of a batch (rows of STAT_COLUMNS values): the mean
 * entropy of the predicted distribution, and the share of positions whose target is the argmax.
 */
export function tokenMetrics(stats: ArrayLike<number>): Record<string, number> {
  const n = stats.length / STAT_COLUMNS;
  let entropy = 0,
    hits = 0;
  for (let i = 0; i < n; i++) {
    entropy += stats[i * STAT_COLUMNS + 1];
    if (targetIsArgmax(stats[i * STAT_COLUMNS + 2])) hits++;
  }
  return { entropy: n > 0 ? entropy / n : 0, mean_token_accuracy: n > 0 ? hits / n : 0 };
}

/** The sequences of an example: one, or those packed into it. */
const segmentsOf = (e: SftExample): number[] => e.seqLengths ?? [e.ids.length];

/** Tokens an example's loss counts: labelled tokens that are not the first of their sequence. */
export function lossTokens(e: SftExample): number {
  const labels = labelsOf(e);
  let n = 0,
    at = 0;
  for (const len of segmentsOf(e)) {
    for (let t = at + 1; t < at + len; t++) n += labels[t];
    at += len;
  }
  return n;
}

/** The sequences of a micro-batch as padded rows, with the targets each position predicts (-100 = none). */
export function sequenceRows(examples: readonly SftExample[], padId: number) {
  const seqs: Array<{ ids: number[]; labels: number[] }> = [];
  for (const e of examples) {
    const labels = labelsOf(e);
    let at = 0;
    for (const len of segmentsOf(e)) {
      seqs.push({ ids: e.ids.slice(at, at + len), labels: labels.slice(at, at + len) });
      at += len;
    }
  }
  const R = seqs.length,
    T = Math.max(1, ...seqs.map((s) => s.ids.length));
  const ids = new Int32Array(R * T).fill(padId),
    mask = new Float32Array(R * T);
  const picks: number[] = [],
    targets: number[] = [];
  seqs.forEach((s, r) => {
    ids.set(s.ids, r * T);
    mask.fill(1, r * T, r * T + s.ids.length);
    for (let t = 0; t + 1 < s.ids.length; t++) {
      if (s.labels[t + 1]) {
        picks.push(r * T + t);
        targets.push(s.ids[t + 1]);
      }
    }
  });
  return { R, T, ids, mask, picks: Int32Array.from(picks), targets: Int32Array.from(targets) };
}

export class SftObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout: number;

  constructor(readonly parts: SftParts) {
    this.size = parts.train.examples.length;
    this.params = parts.params;
    this.loraDropout = parts.loraDropout;
  }

  /** TRL's num_tokens of a micro-batch: its attention mask, or with padding_free its one padded row. */
  private batchTokens(examples: readonly SftExample[]): number {
    let n = 0;
    for (const e of examples) n += e.ids.length;
    const { cfg } = this.parts;
    if (!paddingFree(cfg)) return n;
    const m = cfg.pad_to_multiple_of > 0 ? cfg.pad_to_multiple_of : 1;
    return Math.ceil(n / m) * m;
  }

  private async forward(
    data: SftDataset,
    indices: number[],
    scale: number | null,
    dropout: LoraDropout | null = null,
  ): Promise<MicroResult> {
    const examples = indices.map((i) => data.examples[i]);
    const b = sequenceRows(examples, this.parts.padId);
    const tokens = this.batchTokens(examples);
    const dft = this.parts.cfg.loss_type === 'dft';
    const model = this.parts.policy;
    return tidyAsync(async () => {
      const hidden = model.body(tensor(b.ids, [b.R, b.T], 'i32'), {
        attentionMask: tensor(b.mask, [b.R, b.T]),
        dropout,
      }); // (R, T, C)
      const M = b.picks.length;
      const h = embedding(reshape(hidden, [b.R * b.T, model.hiddenSize]), tensor(b.picks, [M], 'i32')); // (M, C)
      const head = headLogps(model, h, b.targets, { stats: positionStats });
      // nll: -mean log p(target); dft: -mean sg(p(target)) log p(target) (arXiv:2508.05629, Eq. 8).
      const terms = dft ? mul(head.logps, detach(exp(head.logps))) : head.logps; // (M)
      const loss = affine(sum(terms), -1 / Math.max(1, M));
      const lossOut = detach(loss); // read after backward frees the graph
      if (scale !== null) backward(affine(loss, scale), { free: true });
      const [value, stats] = await Promise.all([lossOut.item(), head.stats!.toArray()]);
      return { loss: value, metrics: tokenMetrics(stats), tokens };
    });
  }

  /** Each micro-batch's share of the step's loss tokens (the loss is their mean over the whole step). */
  microWeights(batches: number[][]): number[] {
    const counts = batches.map((idx) => idx.reduce((a, i) => a + lossTokens(this.parts.train.examples[i]), 0));
    const total = counts.reduce((a, n) => a + n, 0);
    return counts.map((n) => (total > 0 ? n / total : 1 / batches.length));
  }

  micro(indices: number[], scale: number, _step?: number, dropout?: LoraDropout | null): Promise<MicroResult> {
    return this.forward(this.parts.train, indices, scale, dropout);
  }

  async evaluate(): Promise<Record<string, number> | null> {
    const ev = this.parts.eval;
    if (!ev || ev.examples.length === 0) return null;
    const bs = this.parts.cfg.per_device_eval_batch_size;
    // As transformers' evaluation loop and TRL: the loss is a mean over examples of each batch's loss
    // (also with padding_free, whose batch is one row: the loop repeats each loss eval_batch_size
    // times and accelerate cuts the last batch's to the examples left), the other metrics a mean over batches.
    let loss = 0,
      rows = 0,
      batches = 0,
      entropy = 0,
      accuracy = 0;
    for (const idx of batchesOf(ev.examples.length, bs)) {
      const r = await noGrad(() => this.forward(ev, idx, null));
      loss += r.loss * idx.length;
      rows += idx.length;
      entropy += r.metrics.entropy;
      accuracy += r.metrics.mean_token_accuracy;
      batches++;
    }
    return { loss: loss / rows, entropy: entropy / batches, mean_token_accuracy: accuracy / batches };
  }

  saveWeights(dir: string): Promise<void> {
    return this.parts.saveWeights(dir);
  }

  loadWeights(dir: string): Promise<void> {
    return this.parts.loadWeights(dir);
  }
}

/** TRL 1.13: padding_free, or packing with a bfd strategy (which turns it on). */
export function paddingFree(cfg: Partial<Pick<SftConfig, 'padding_free' | 'packing' | 'packing_strategy'>>): boolean {
  return !!cfg.padding_free || (!!cfg.packing && cfg.packing_strategy !== 'wrapped');
}

/** Checks SFTConfig combinations TRL 1.13 rejects, and the one-line notices of options with no effect here. */
export function sftNotices(cfg: SftConfig): string[] {
  if (cfg.packing && cfg.max_length <= 0)
    throw new Error('packing needs max_length > 0 (the packed row length), as TRL 1.13');
  if (cfg.padding_free && !cfg.packing && cfg.max_length > 0) {
    throw new Error(
      'padding_free without packing does not enforce max_length (TRL 1.13 ' +
        'rejects it): set max_length 0, or packing with packing_strategy bfd',
    );
  }
  if (cfg.pad_to_multiple_of < 0)
    throw new Error(`pad_to_multiple_of is ${cfg.pad_to_multiple_of}; expected a positive integer, or 0 for none`);
  const out: string[] = [];
  if (cfg.activation_offloading)
    out.push(
      'notice: activation_offloading has no effect in tsdpo (there is no separate ' +
        'device memory to offload from; gradient_checkpointing saves activation memory)',
    );
  if (cfg.dataset_num_proc > 0)
    out.push('notice: dataset_num_proc has no effect in tsdpo (rows are tokenized in one process)');
  if (cfg.pad_token)
    out.push(
      'notice: pad_token is deprecated in TRL 1.13 (set the ' +
        "tokenizer's pad token); padding never changes tsdpo's numbers",
    );
  if (cfg.truncation_mode === 'keep_end' && cfg.max_length > 0 && !cfg.packing)
    out.push(
      'notice: truncation_mode keep_end is deprecated in TRL 1.13; tsdpo keeps the end of each sequence, as 1.13 does',
    );
  if (cfg.packing && cfg.packing_strategy === 'wrapped')
    out.push(
      'notice: packing_strategy wrapped: packed rows attend across ' +
        'the examples they hold (as TRL 1.13 without padding_free)',
    );
  return out;
}

/** The tokenizer with eos_token (TRL's SFTConfig.eos_token) as its EOS, in ids and in chat templates. */
export function withEosToken(tok: TextTokenizer, eosToken: string): TextTokenizer {
  if (!eosToken) return tok;
  const id = tok.tokenToId(eosToken);
  if (id === null) throw new Error(`eos_token '${eosToken}' is not in the vocabulary of ${tok.source}`);
  const t = Object.create(tok) as TextTokenizer;
  Object.assign(t, {
    eosToken,
    eosId: id,
    applyChatTemplate: (
      m: Parameters<TextTokenizer['applyChatTemplate']>[0],
      o: Parameters<TextTokenizer['applyChatTemplate']>[1] = {},
    ) => tok.applyChatTemplate(m, { ...o, variables: { eos_token: eosToken, ...o.variables } }),
  });
  return t;
}

/** The tokenizer with the chat template `text` (a .jinja file's contents); errors name `source`. */
export function withChatTemplateText(tok: TextTokenizer, text: string, source: string): TextTokenizer {
  const renderer = new ChatTemplateRenderer(
    new Map([['default', text]]),
    { bos_token: tok.bosToken, eos_token: tok.eosToken, pad_token: tok.padToken },
    source,
  );
  const t = Object.create(tok) as TextTokenizer;
  Object.assign(t, {
    hasChatTemplate: true,
    chatTemplateNames: renderer.names,
    applyChatTemplate: renderer.render.bind(renderer),
  });
  return t;
}

/** The pad id: pad_token, else the tokenizer's pad token, else EOS (TRL 1.13's rule). */
export function sftPadId(cfg: SftConfig, tok: TextTokenizer): number {
  if (!cfg.pad_token) return padIdFor(tok);
  const id = tok.tokenToId(cfg.pad_token);
  if (id === null) throw new Error(`pad_token '${cfg.pad_token}' is not in the vocabulary of ${tok.source}`);
  return id;
}

/** Whether a split is packed: eval_packing decides for the eval split when set, else packing. */
function packs(cfg: SftConfig, isEval: boolean): boolean {
  return isEval && cfg.eval_packing !== '' ? cfg.eval_packing === 'true' : cfg.packing;
}

/**
 * The tokenizer SFT's rows go through: eos_token applied, and chat_template_path's template, whose
 * contents the caller gives as `chatTemplate` (train/sft-files.ts reads the file).
 */
export function sftTokenizer(cfg: SftConfig, tok: TextTokenizer, chatTemplate: string | null = null): TextTokenizer {
  if (cfg.chat_template_path && chatTemplate === null)
    throw new Error(
      `sftTokenizer: chat_template_path ${cfg.chat_template_path} is set but its contents were not given`,
    );
  const templated = chatTemplate === null ? tok : withChatTemplateText(tok, chatTemplate, cfg.chat_template_path);
  return withEosToken(templated, cfg.eos_token);
}

/** The tokenization options of one SFT split (dataset_text_field, the loss masks, truncation). */
export function sftDataOptions(
  cfg: SftConfig,
  data: LoadOptions & SftDataOptions,
  split: string,
  isEval: boolean,
): LoadOptions & SftDataOptions {
  return {
    ...data,
    split,
    columns: { ...data.columns, text: cfg.dataset_text_field },
    completionOnlyLoss: cfg.completion_only_loss,
    assistantOnlyLoss: cfg.assistant_only_loss,
    truncationMode: cfg.truncation_mode as 'keep_start' | 'keep_end',
    maxLength: packs(cfg, isEval) || cfg.max_length <= 0 ? null : cfg.max_length, // packing cuts to max_length itself
  };
}

/** A tokenized split shuffled (shuffle_dataset) and packed (packing) as TRL 1.13's SFTTrainer prepares it. */
export function arrangeSftData(cfg: SftConfig, ds: SftDataset, isEval: boolean): SftDataset {
  // shuffle_dataset: datasets' Dataset.shuffle(seed), before packing and again after it, as TRL 1.13.
  const shuffle = <T>(rows: T[]): T[] =>
    cfg.shuffle_dataset ? numpyPermutation(rows.length, cfg.seed).map((i) => rows[i]) : rows;
  if (!packs(cfg, isEval)) return { ...ds, examples: shuffle(ds.examples), sources: shuffle(ds.sources) };
  const examples = shuffle(packSft(shuffle(ds.examples), cfg.max_length, cfg.packing_strategy as PackingStrategy));
  return {
    ...ds,
    examples,
    sources: [],
    report: {
      ...ds.report,
      rows: examples.length,
      format:
        `${ds.report.format}, packed ${cfg.packing_strategy} into ` +
        `${examples.length} rows of <= ${cfg.max_length} tokens`,
    },
  };
}
