// Pre-training of the demo's small GPT-2 from scratch: the demo corpus (src/demo/corpus.ts) and
// its byte-level BPE tokenizer, documents joined by <|endoftext|> and packed into fixed-length
// blocks, next-token cross-entropy, AdamW with warmup + cosine decay, held-out loss. The result is
// a Hugging Face folder (config.json, model.safetensors, tokenizer files) that loadModel and
// transformers load. Shape letters: B blocks per step, T tokens per block, V vocabulary.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../core/random.js';
import { affine, backward, logSoftmaxGather, noGrad, sum, tensor, tidyAsync } from '../core/index.js';
import { initEngine } from '../engine.js';
import { initModel } from '../models/init.js';
import { hostParams, trainAll } from '../models/load.js';
import { saveHfFolder } from '../io/hf.js';
import { f16ToF32, f32ToF16 } from '../io/half.js';
import { forward, type CausalLM } from '../models/model.js';
import { ByteLevelBpe } from '../tokenizer/bpe.js';
import { EOS_TOKEN } from '../tokenizer/bpe-train.js';
import { fromTokenizerJson } from '../tokenizer/hf-json.js';
import type { ConfigOf, OptionSpec } from '../train/config.js';
import { clipGradNorm, Optimizer, type NamedParam } from '../train/optim.js';
import { progress } from '../train/progress.js';
import { lrMultiplier } from '../train/schedule.js';
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
  // Weight decay on matrices only (GPT-2 / nanoGPT practice): biases and LayerNorm gains keep theirs.
  const isMatrix = (p: NamedParam) => p.tensor.ndim >= 2;
  const adam = { name: 'adamw', beta1: 0.9, beta2: cfg.adam_beta2, eps: 1e-8, momentum: 0, alpha: 0.99 } as const;
  const optimizers = [
    new Optimizer(params.filter(isMatrix), { ...adam, weightDecay: cfg.weight_decay }),
    new Optimizer(
      params.filter((p) => !isMatrix(p)),
      { ...adam, weightDecay: 0 },
    ),
  ];

  const metrics: Record<string, number>[] = [];
  const record = (line: Record<string, number>) => metrics.push(line);

  const B = cfg.batch_size;
  let order = permutation(train.count, cfg.seed),
    epoch = 0,
    cursor = 0;
  const nextBlocks = (): number[] => {
    const out: number[] = [];
    while (out.length < B) {
      if (cursor === order.length) {
        epoch++;
        order = permutation(train.count, cfg.seed + epoch);
        cursor = 0;
      }
      out.push(order[cursor++]);
    }
    return out;
  };
  const bar = progress('pretrain', cfg.max_steps, { silent: opts.quiet });
  let lossSum = 0,
    lossCount = 0,
    lastLoss = NaN,
    windowStart = performance.now();
  try {
    for (let step = 0; step < cfg.max_steps; step++) {
      const { ids, targets } = blockBatch(train, nextBlocks());
      const loss = await tidyAsync(async () => {
        const nll = batchNll(model, ids, targets, B, T);
        const mean = affine(nll, 1 / (B * T));
        backward(mean);
        return mean.item();
      });
      if (!Number.isFinite(loss))
        throw new Error(`pretrain: loss is ${loss} at step ${step + 1} (lower --learning_rate?)`);
      const gradNorm = await clipGradNorm(params, cfg.max_grad_norm);
      const mult = lrMultiplier('cosine', step, cfg.warmup_steps, cfg.max_steps);
      const lr =
        cfg.learning_rate * (step < cfg.warmup_steps ? mult : cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * mult);
      for (const o of optimizers) {
        o.update(lr);
        o.zeroGrad();
      }
      lossSum += loss;
      lossCount++;
      lastLoss = loss;
      bar.update(step + 1, `loss ${loss.toFixed(3)}`);
      const done = step + 1;
      if (done % 50 === 0 || done === cfg.max_steps) {
        const secs = (performance.now() - windowStart) / 1000;
        record({
          step: done,
          loss: lossSum / lossCount,
          learning_rate: lr,
          grad_norm: gradNorm,
          tokens_per_second: Math.round((lossCount * B * T) / secs),
        });
        lossSum = 0;
        lossCount = 0;
        windowStart = performance.now();
      }
      if (done % cfg.eval_steps === 0 && done < cfg.max_steps) {
        const ev = await meanLoss(model, held, B, cfg.eval_blocks);
        record({ step: done, eval_loss: ev });
        bar.log(
          `step ${done}: train loss ${loss.toFixed(3)}, held-out loss ${ev.toFixed(3)} (first ${cfg.eval_blocks} blocks)`,
        );
      }
    }
  } finally {
    bar.stop();
  }
  for (const o of optimizers) o.dispose();

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
  return `# tsdpo demo model

A small GPT-2 (${cfg.n_layer} layers, hidden size ${cfg.n_embd}, ${cfg.n_head} heads, context ${cfg.n_positions} tokens,
${(r.parameters / 1e6).toFixed(2)}M parameters, byte-level BPE vocabulary of 2048) pre-trained from scratch by \`tsdpo pretrain\`
on the demo corpus: review sentences (IMDb, Amazon, Yelp; UCI Sentiment Labelled Sentences) and public-domain
prose (nine Project Gutenberg novels, U.S. State of the Union addresses 1945-2021). It is the starting (SFT = reference)
model of \`tsdpo demo\`. It writes review-like English of a very small model: expect grammar mostly, sense rarely.

- Command: \`${pretrainCommandLine({ ...cfg, output: PRETRAIN_OPTIONS.output.default, data_dir: PRETRAIN_OPTIONS.data_dir.default })}\`
  (the defaults of \`tsdpo pretrain\`, with the packages of package-lock.json; bit-identical for any thread count on one
  machine, while another CPU may round the relaxed-SIMD kernels differently)
- Training: ${r.steps} steps of ${cfg.batch_size} blocks x ${cfg.n_positions} tokens = ${(r.tokens / 1e6).toFixed(2)}M tokens (${(r.tokens / r.trainTokens).toFixed(2)} passes
  over the ${(r.trainTokens / 1e6).toFixed(2)}M-token training split), AdamW (beta2 ${cfg.adam_beta2}, weight decay ${cfg.weight_decay} on matrices), learning rate ${cfg.learning_rate} with
  ${cfg.warmup_steps} warmup steps and cosine decay to ${cfg.min_lr_ratio}x, gradient clipping ${cfg.max_grad_norm}; ${(r.seconds / 60).toFixed(0)} min on CPU.
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
