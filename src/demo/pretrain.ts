// Pre-training of the demo's small GPT-2 from scratch: the demo corpus (src/demo/corpus.ts) and
// its byte-level BPE tokenizer, documents joined by <|endoftext|> and packed into fixed-length
// blocks, next-token cross-entropy (an objective of the shared training loop, src/train/trainer.ts:
// AdamW with decay on matrices only, warmup + cosine decay to a floor, clipping, logging, periodic
// held-out loss), then the held-out loss of the saved weights. The result is a Hugging Face folder
// (config.json, model.safetensors, tokenizer files) that loadModel and transformers load.
// Shape letters: B blocks per step, T tokens per block, V vocabulary.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../core/random.js';
import { affine, backward, logSoftmaxGather, noGrad, sum, tensor, tidyAsync } from '../core/index.js';
import { initEngine } from '../engine.js';
import { initModel } from '../models/init.js';
import { hostParams, restoreModel, saveModel, trainAll } from '../models/load.js';
import { saveHfFolder } from '../io/hf.js';
import { f16ToF32, f32ToF16 } from '../io/half.js';
import { forward, type CausalLM } from '../models/model.js';
import { ByteLevelBpe } from '../tokenizer/bpe.js';
import { EOS_TOKEN } from '../tokenizer/bpe-train.js';
import { fromTokenizerJson } from '../tokenizer/hf-json.js';
import { COMMON_OPTIONS, defaultsOf, type ConfigOf, type OptionSpec } from '../train/config.js';
import type { NamedParam } from '../train/optim.js';
import { train as runTraining, type MicroResult, type Objective, type TrainConfig } from '../train/trainer.js';
import { writeDemoData } from './make-data.js';

/** `tsdpo pretrain` options; these defaults produced the committed assets/demo-model/. */
export const PRETRAIN_OPTIONS = {
  output: { type: 'string', default: 'assets/demo-model', help: 'folder the model (HF format) is written to' },
  data_dir: {
    type: 'string',
    default: 'runs/demo-data',
    help: 'folder for the corpus and tokenizer (written by writeDemoData, rebuilt every run)',
  },
  n_layer: { type: 'int', default: 4, help: 'transformer blocks' },
  n_embd: { type: 'int', default: 192, help: 'hidden size' },
  n_head: { type: 'int', default: 4, help: 'attention heads' },
  n_positions: { type: 'int', default: 64, help: 'context length = block length T' },
  batch_size: { type: 'int', default: 32, help: 'blocks per optimizer step (B)' },
  max_steps: { type: 'int', default: 1200, help: 'optimizer steps (B * T tokens each)' },
  learning_rate: { type: 'number', default: 2e-3, help: 'peak learning rate (AdamW)' },
  min_lr_ratio: { type: 'number', default: 0.1, help: 'the cosine decays to learning_rate * this' },
  warmup_steps: { type: 'int', default: 100, help: 'linear warmup from 0' },
  weight_decay: { type: 'number', default: 0.1, help: 'decoupled weight decay on matrices (not biases, norms)' },
  adam_beta2: { type: 'number', default: 0.95, help: 'AdamW beta2 (beta1 0.9)' },
  max_grad_norm: { type: 'number', default: 1, help: 'global gradient-norm clipping' },
  eval_steps: { type: 'int', default: 200, help: 'held-out loss on eval_blocks blocks every this many steps' },
  eval_blocks: {
    type: 'int',
    default: 64,
    help: 'held-out blocks of the periodic evaluation (the final one uses all)',
  },
  seed: { type: 'int', default: 0, help: 'seed of the initial weights and of the block order' },
  save_dtype: {
    type: 'string',
    default: 'float16',
    choices: ['float16', 'float32'],
    help: 'dtype of model.safetensors (float16 halves the file; the held-out loss is measured on the saved weights)',
  },
  threads: { type: 'int', default: 0, help: 'CPU threads (0 = all cores)' },
} as const satisfies Record<string, OptionSpec>;

export type PretrainConfig = ConfigOf<typeof PRETRAIN_OPTIONS>;

/** A token stream cut into blocks of T + 1 tokens (inputs t..t+T-1, targets t+1..t+T), stride T. */
export interface Blocks {
  T: number;
  count: number;
  /** Start of block i in `stream` is i * T. */
  stream: Int32Array;
}

/** Joins documents into one stream, each followed by EOS (so the model learns where a text ends). */
export function tokenStream(docs: readonly string[], enc: ByteLevelBpe, eosId: number): Int32Array {
  const parts: number[][] = [];
  let n = 0;
  for (const d of docs) {
    const ids = enc.encode(d);
    ids.push(eosId);
    parts.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function packBlocks(stream: Int32Array, T: number): Blocks {
  if (!(T >= 2)) throw new Error(`packBlocks: block length ${T} must be at least 2`);
  return { T, count: Math.max(0, Math.floor((stream.length - 1) / T)), stream };
}

/** Inputs and targets [B, T] of the blocks `which` (host arrays). */
export function blockBatch(b: Blocks, which: readonly number[]): { ids: Int32Array; targets: Int32Array } {
  const { T } = b;
  const ids = new Int32Array(which.length * T),
    targets = new Int32Array(which.length * T);
  which.forEach((blk, r) => {
    if (!(blk >= 0 && blk < b.count)) throw new Error(`blockBatch: block ${blk} is out of range (0..${b.count - 1})`);
    ids.set(b.stream.subarray(blk * T, blk * T + T), r * T);
    targets.set(b.stream.subarray(blk * T + 1, blk * T + T + 1), r * T);
  });
  return { ids, targets };
}

/** Summed next-token NLL of a batch (a scalar tensor, differentiable) and its token count. */
function batchNll(model: CausalLM, ids: Int32Array, targets: Int32Array, B: number, T: number) {
  const logits = forward(model, tensor(ids, [B, T], 'i32')); // (B, T, V)
  return affine(sum(logSoftmaxGather(logits, tensor(targets, [B, T], 'i32'))), -1);
}

/** Mean next-token loss (nats) over blocks [from, to) of `b`, batch by batch, no gradient. */
export async function meanLoss(model: CausalLM, b: Blocks, batchSize: number, count = b.count): Promise<number> {
  let total = 0,
    tokens = 0;
  for (let i = 0; i < Math.min(count, b.count); i += batchSize) {
    const which = Array.from({ length: Math.min(batchSize, count - i, b.count - i) }, (_, k) => i + k);
    const { ids, targets } = blockBatch(b, which);
    total += await noGrad(() => tidyAsync(async () => batchNll(model, ids, targets, which.length, b.T).item()));
    tokens += which.length * b.T;
  }
  return tokens === 0 ? NaN : total / tokens;
}

/** A seeded permutation of 0..n-1 (the block order of one epoch). */
export function permutation(n: number, seed: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

export function gpt2Config(cfg: PretrainConfig, vocab: number, eosId: number): Record<string, unknown> {
  if (cfg.n_embd % cfg.n_head !== 0)
    throw new Error(`pretrain: n_embd ${cfg.n_embd} is not divisible by n_head ${cfg.n_head}`);
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: vocab,
    n_positions: cfg.n_positions,
    n_ctx: cfg.n_positions,
    n_embd: cfg.n_embd,
    n_layer: cfg.n_layer,
    n_head: cfg.n_head,
    n_inner: null,
    activation_function: 'gelu_new',
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    layer_norm_epsilon: 1e-5,
    initializer_range: 0.02,
    bos_token_id: eosId,
    eos_token_id: eosId,
    tie_word_embeddings: true,
    scale_attn_weights: true,
    use_cache: true,
  };
}

/**
 * The shared loop's settings for `cfg` (src/train/trainer.ts): one micro-batch of batch_size blocks
 * per step, AdamW (beta1 0.9, eps 1e-8), linear warmup then cosine decay to learning_rate *
 * min_lr_ratio, clipping, metrics every 50 steps, nothing written (output_dir '').
 */
export function pretrainTrainConfig(cfg: PretrainConfig): TrainConfig {
  if (!(cfg.max_steps >= 1)) throw new Error(`pretrain: --max_steps is ${cfg.max_steps}; expected >= 1`);
  return {
    ...defaultsOf(COMMON_OPTIONS),
    output_dir: '',
    seed: cfg.seed,
    data_seed: -1,
    max_steps: cfg.max_steps,
    per_device_train_batch_size: cfg.batch_size,
    gradient_accumulation_steps: 1,
    optim: 'adamw_torch',
    learning_rate: cfg.learning_rate,
    lr_scheduler_type: 'cosine_with_min_lr',
    min_lr_rate: cfg.min_lr_ratio,
    warmup_steps: cfg.warmup_steps,
    warmup_ratio: 0,
    weight_decay: cfg.weight_decay,
    adam_beta1: 0.9,
    adam_beta2: cfg.adam_beta2,
    adam_epsilon: 1e-8,
    max_grad_norm: cfg.max_grad_norm,
    logging_steps: 50,
    eval_steps: Math.max(0, cfg.eval_steps),
    save_steps: 0,
  };
}

/**
 * Next-token prediction over packed blocks, as an objective of the shared loop. The blocks are a
 * stream: a step's batch_size blocks run on into the next epoch's order (permutation(count, seed +
 * epoch)); weight decay applies to matrices only (GPT-2 / nanoGPT practice: not to biases and
 * LayerNorm gains); the periodic held-out loss covers the first eval_blocks blocks.
 */
export class PretrainObjective implements Objective {
  readonly size: number;
  readonly loraDropout = 0;
  readonly stream = true;
  readonly decayed: (name: string) => boolean;
  readonly permutation = (size: number, seed: number, epoch: number): Int32Array => permutation(size, seed + epoch);

  constructor(
    readonly model: CausalLM,
    readonly params: NamedParam[],
    readonly train: Blocks,
    readonly held: Blocks,
    readonly cfg: Pick<PretrainConfig, 'batch_size' | 'eval_steps' | 'eval_blocks' | 'max_steps'>,
  ) {
    if (train.count < 1) throw new Error(`pretrain: the training text fills no block of ${train.T + 1} tokens`);
    this.size = train.count;
    const matrices = new Set(params.filter((p) => p.tensor.ndim >= 2).map((p) => p.name));
    this.decayed = (name) => matrices.has(name);
  }

  /** Mean next-token loss of the blocks `indices` (B * T tokens), backpropagated times `scale`. */
  async micro(indices: number[], scale: number): Promise<MicroResult> {
    const B = indices.length,
      T = this.train.T;
    const { ids, targets } = blockBatch(this.train, indices);
    const loss = await tidyAsync(async () => {
      const mean = affine(batchNll(this.model, ids, targets, B, T), 1 / (B * T));
      backward(scale === 1 ? mean : affine(mean, scale));
      return mean.item();
    });
    return { loss, metrics: {}, tokens: B * T };
  }

  /** The held-out loss every eval_steps steps before the last (the last is measured on the saved weights). */
  async evaluate(step = 0): Promise<Record<string, number> | null> {
    const c = this.cfg;
    if (!(c.eval_steps > 0 && step % c.eval_steps === 0 && step < c.max_steps)) return null;
    return { loss: await meanLoss(this.model, this.held, c.batch_size, c.eval_blocks) };
  }

  async saveWeights(dir: string): Promise<void> {
    await saveModel(this.model, dir);
  }

  async loadWeights(dir: string): Promise<void> {
    restoreModel(this.model, dir);
  }
}

export interface PretrainResult {
  steps: number;
  tokens: number;
  /** Tokens in the training split (one pass). */
  trainTokens: number;
  seconds: number;
  parameters: number;
  /** Held-out mean loss (nats per token) over all held-out text, reviews only, prose only. */
  heldOut: { loss: number; perplexity: number; reviewLoss: number; proseLoss: number; blocks: number };
  trainLossLast: number;
  output: string;
}

type Log = (line: string) => void;

/** Pre-trains the demo model and writes it into cfg.output. */
export async function pretrain(
  cfg: PretrainConfig,
  opts: { log?: Log; quiet?: boolean } = {},
): Promise<PretrainResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  await initEngine({ device: 'cpu', threads: cfg.threads || undefined, log });
  const t0 = performance.now();

  log(`corpus and tokenizer -> ${cfg.data_dir}`);
  const data = writeDemoData(cfg.data_dir);
  const bpe = fromTokenizerJson(JSON.parse(readFileSync(join(cfg.data_dir, 'tokenizer.json'), 'utf8')));
  const enc = new ByteLevelBpe(bpe);
  const eosId = enc.specialId(EOS_TOKEN);
  const kindOf = new Map(data.corpus.sources.map((s) => [s.id, s.kind]));
  const T = cfg.n_positions;
  const tokenize = (docs: { text: string }[]) =>
    packBlocks(
      tokenStream(
        docs.map((d) => d.text),
        enc,
        eosId,
      ),
      T,
    );
  const train = tokenize(data.corpus.train);
  const held = tokenize(data.corpus.heldOut);
  const heldReview = tokenize(data.corpus.heldOut.filter((d) => kindOf.get(d.source) === 'review'));
  const heldProse = tokenize(data.corpus.heldOut.filter((d) => kindOf.get(d.source) === 'prose'));
  log(
    `tokens: train ${train.stream.length} (${train.count} blocks of ${T}), held-out ${held.stream.length}; ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const config = gpt2Config(cfg, enc.vocabSize, eosId);
  const model = initModel(config, cfg.seed);
  const params = trainAll(model);
  const parameters = params.reduce((n, p) => n + p.tensor.size, 0);
  log(
    `model: GPT-2, ${cfg.n_layer} layers, d ${cfg.n_embd}, ${cfg.n_head} heads, context ${T}: ${(parameters / 1e6).toFixed(2)}M parameters`,
  );
  const B = cfg.batch_size;
  const metrics: Record<string, number>[] = [];
  const record = (line: Record<string, number>) => metrics.push(line);
  let lastLoss = NaN;
  const run = await runTraining(pretrainTrainConfig(cfg), new PretrainObjective(model, params, train, held, cfg), {
    log: opts.log,
    quiet: opts.quiet,
    label: 'pretrain',
    onStep: (_step, _total, loss) => (lastLoss = loss),
  });
  if (run.stopped) throw new Error(`pretrain: ${run.stopped}`);
  // metrics.jsonl keeps the demo's own lines: the train windows and the periodic held-out loss.
  for (const h of run.history) {
    if ('loss' in h) {
      const { step, loss, learning_rate, grad_norm, tokens_per_second } = h;
      record({ step, loss, learning_rate, grad_norm, tokens_per_second });
    } else if ('eval_loss' in h) record({ step: h.step, eval_loss: h.eval_loss });
  }

  if (cfg.save_dtype === 'float16') {
    // Round to float16 first, so that the held-out loss below is that of the weights as saved.
    for (const t of model.params.values())
      t.backend.write(t.storage, f16ToF32(f32ToF16(Float32Array.from(await t.toArray()))));
  }
  log('held-out loss (all held-out text) ...');
  const loss = await meanLoss(model, held, B);
  const heldOut = {
    loss,
    perplexity: Math.exp(loss),
    blocks: held.count,
    reviewLoss: await meanLoss(model, heldReview, B),
    proseLoss: await meanLoss(model, heldProse, B),
  };
  record({
    step: cfg.max_steps,
    eval_loss: heldOut.loss,
    eval_review_loss: heldOut.reviewLoss,
    eval_prose_loss: heldOut.proseLoss,
  });
  const seconds = (performance.now() - t0) / 1000;
  const result: PretrainResult = {
    steps: cfg.max_steps,
    tokens: cfg.max_steps * B * T,
    trainTokens: train.stream.length,
    seconds,
    parameters,
    heldOut,
    trainLossLast: lastLoss,
    output: cfg.output,
  };
  // The tokenizer files and the corpus manifest (sources, licences, sizes) travel with the model.
  const copy = (f: string) => readFileSync(join(cfg.data_dir, f), 'utf8');
  const { output: _o, data_dir: _d, threads: _t, ...settings } = cfg;
  const dtype = cfg.save_dtype === 'float16' ? 'F16' : 'F32';
  saveHfFolder(cfg.output, {
    config: { ...config, torch_dtype: cfg.save_dtype },
    tensors: [...(await hostParams(model)).values()].map((t) => ({ ...t, dtype })),
    generationConfig: { bos_token_id: eosId, eos_token_id: eosId, pad_token_id: eosId },
    extraFiles: {
      'tokenizer.json': copy('tokenizer.json'),
      'tokenizer_config.json': copy('tokenizer_config.json'),
      'corpus-manifest.json': copy('manifest.json'),
      'metrics.jsonl': metrics.map((l) => `${JSON.stringify(l)}\n`).join(''),
      'README.md': modelCard(cfg, result),
      'pretrain.json': `${JSON.stringify({ command: pretrainCommandLine(cfg), settings, result: { ...result, output: undefined } }, null, 2)}\n`,
    },
  });
  for (const t of model.params.values()) t.dispose();
  return result;
}

/** The `tsdpo pretrain` command line that gives `cfg` (options at their default are left out). */
export function pretrainCommandLine(cfg: PretrainConfig): string {
  const flags: string[] = [];
  for (const [k, s] of Object.entries(PRETRAIN_OPTIONS)) {
    const v = (cfg as Record<string, unknown>)[k];
    if (v !== s.default) flags.push(`--${k} ${v}`);
  }
  return ['tsdpo pretrain', ...flags].join(' ');
}

/** The model card written beside the weights: what the model is, how it was made, the licences. */
export function modelCard(cfg: PretrainConfig, r: PretrainResult): string {
  const h = r.heldOut;
  const training =
    `- Training: ${r.steps} steps of ${cfg.batch_size} blocks x ${cfg.n_positions} tokens = ` +
    `${(r.tokens / 1e6).toFixed(2)}M tokens (${(r.tokens / r.trainTokens).toFixed(2)} passes\n` +
    `  over the ${(r.trainTokens / 1e6).toFixed(2)}M-token training split), AdamW (beta2 ${cfg.adam_beta2}, ` +
    `weight decay ${cfg.weight_decay} on matrices), learning rate ${cfg.learning_rate} with\n` +
    `  ${cfg.warmup_steps} warmup steps and cosine decay to ${cfg.min_lr_ratio}x, ` +
    `gradient clipping ${cfg.max_grad_norm}; ${(r.seconds / 60).toFixed(0)} min on CPU.`;
  return `# tsdpo demo model

A small GPT-2 (${cfg.n_layer} layers, hidden size ${cfg.n_embd}, ${cfg.n_head} heads, context ${cfg.n_positions} tokens,
${(r.parameters / 1e6).toFixed(2)}M parameters, byte-level BPE vocabulary of 2048) pre-trained from scratch by \`tsdpo pretrain\`
on the demo corpus: review sentences (IMDb, Amazon, Yelp; UCI Sentiment Labelled Sentences) and public-domain
prose (nine Project Gutenberg novels, U.S. State of the Union addresses 1945-2021). It is the starting (SFT = reference)
model of \`tsdpo demo\`. It writes review-like English of a very small model: expect grammar mostly, sense rarely.

- Command: \`${pretrainCommandLine({ ...cfg, output: PRETRAIN_OPTIONS.output.default, data_dir: PRETRAIN_OPTIONS.data_dir.default })}\`
  (the defaults of \`tsdpo pretrain\`, with the packages of package-lock.json; bit-identical for any thread count on one
  machine, while another CPU may round the relaxed-SIMD kernels differently)
${training}
- Held-out loss (documents never trained on): ${h.loss.toFixed(3)} nats per token (perplexity ${h.perplexity.toFixed(1)});
  review sentences ${h.reviewLoss.toFixed(3)}, prose ${h.proseLoss.toFixed(3)}. Weights saved as ${cfg.save_dtype}; the losses are those of the saved weights.
- Files: config.json, model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json (transformers:
  \`GPT2LMHeadModel.from_pretrained\` / \`AutoTokenizer.from_pretrained\`), metrics.jsonl (training curve),
  pretrain.json (settings and results), corpus-manifest.json (sources, sizes and licences of the training text).

## Licence

The weights are derived from their training text. The review sentences come from the UCI Sentiment Labelled
Sentences data set (Kotzias, Denil, de Freitas and Smyth, "From Group to Individual Labels using Deep Features",
KDD 2015), listed by the UCI Machine Learning Repository under CC BY 4.0: this paragraph is the attribution it asks for.
The novels (authors died before 1955) and the State of the Union addresses (works of the U.S. Government) are in the
public domain. The model is distributed with the tsdpo repository (MIT); see docs/data-licences.md there.
`;
}
