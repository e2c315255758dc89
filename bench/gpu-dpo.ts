// DPO training speed on a GPU (or any device): one step = policy forward + backward, frozen
// reference forward, sigmoid DPO loss, AdamW, reading back only the loss. Random weights and
// tokens at a model's real shapes; prints JSON lines (tokens/s, achieved TFLOP/s, adapter).
// Run: npm run build && node dist/bench/gpu-dpo.js [--preset gpt2-124m] [--steps 5] [--warmup 2]
//      [--head all|completion|shared] [--prompt 64] [--device webgpu|cpu|auto] [--matmul] [--profile] [--fast]
//      [--tile 128x128x8] [--vocab N] [--layers N] [--pairs N] [--T N] [--lora R]
// --lora R trains a fresh rank-R LoRA adapter (c_attn on GPT-2, q_proj + v_proj elsewhere: PEFT's
// defaults) and takes the reference from the same model with the adapter off (as TRL with peft).
// --matmul first times the matmul kernel at 4096^3 (--square N) and at the step's shapes, for every tile
// configuration and for the size-based choice; --tile forces one configuration for the whole step.
// --profile times every kernel of one more step on the GPU (timestamp queries) and prints the
// totals per kernel; --fast turns off Dawn's robustness checks and workgroup zeroing (the kernels
// bound every access themselves) and timestamp quantization (TSDPO_DAWN_FLAGS).
// Presets: gpt2-124m (12 layers, d 768, 12 heads, vocab 50257; 16 pairs x 256 tokens),
// gpt2-medium, llama-1b (GQA), qwen2.5-0.5b (GQA, 151,936-token vocabulary, tied embeddings; 8 pairs,
// since [tokens x vocab] logits must fit one buffer), and small / tiny shapes for software adapters.
import * as E from '../src/core/index.js';
import type { Backend } from '../src/core/index.js';
import { initEngine, type DeviceName } from '../src/engine.js';
import { tensorFrom, type RawTensor } from '../src/io/raw-tensor.js';
import { buildModel, trainAll } from '../src/models/load.js';
import { newAdapter } from '../src/models/lora.js';
import type { CausalLM, Json } from '../src/models/model.js';
import { familyOf } from '../src/models/registry.js';
import { pairLogpsSharedPrompt, sequenceLogps, type PairSequences, type TokenBatch } from '../src/train/logps.js';
import { LOSSES, splitPairs } from '../src/train/losses.js';
import { batchSigmoidLoss } from '../src/train/dpo.js';
import { DEFAULT_OPTIMIZER, Optimizer } from '../src/train/optim.js';
import type { WebGpuBackend } from '../src/backend/webgpu/index.js';
import { MATMUL_TILES, forceMatmulTile } from '../src/backend/webgpu/kernels/matmul.js';

interface Preset {
  config: Json;
  pairs: number;
  T: number;
}

const gpt2 = (n_embd: number, n_head: number, n_layer: number, vocab_size: number): Json => ({
  model_type: 'gpt2',
  n_embd,
  n_head,
  n_layer,
  vocab_size,
  n_positions: 1024,
  activation_function: 'gelu_new',
  layer_norm_epsilon: 1e-5,
});

const PRESETS: Record<string, Preset> = {
  'gpt2-124m': { config: gpt2(768, 12, 12, 50257), pairs: 16, T: 256 },
  'gpt2-medium': { config: gpt2(1024, 16, 24, 50257), pairs: 16, T: 256 },
  'llama-1b': {
    config: {
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 5632,
      num_hidden_layers: 22,
      num_attention_heads: 32,
      num_key_value_heads: 4,
      vocab_size: 32000,
      max_position_embeddings: 2048,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      hidden_act: 'silu',
      tie_word_embeddings: false,
    },
    pairs: 16,
    T: 256,
  },
  'qwen2.5-0.5b': {
    config: {
      model_type: 'qwen2',
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      vocab_size: 151936,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      hidden_act: 'silu',
      tie_word_embeddings: true,
    },
    pairs: 8,
    T: 256,
  },
  small: { config: gpt2(128, 4, 2, 2048), pairs: 2, T: 64 },
  tiny: { config: gpt2(64, 4, 2, 512), pairs: 2, T: 32 },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** Uniform noise with standard deviation `std` from a small LCG (fast for 100M+ values). */
function noise(n: number, std: number, seed: number): Float32Array {
  const out = new Float32Array(n),
    a = (std * Math.sqrt(3) * 2) / 4294967296;
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s * a - std * Math.sqrt(3);
  }
  return out;
}

/** Random weights at the family's shapes: norms 1, biases 0, the rest N-like(0, 0.02). */
function randomModel(config: Json, backend: Backend): CausalLM {
  const family = familyOf(config);
  const raw = new Map<string, RawTensor>();
  let seed = 1;
  for (const [name, shape] of family.shapes(family.spec(config))) {
    const n = shape.reduce((x, y) => x * y, 1);
    const isNorm = /(ln_|norm)/.test(name) && name.endsWith('weight');
    const data = isNorm
      ? new Float32Array(n).fill(1)
      : name.endsWith('bias')
        ? new Float32Array(n)
        : noise(n, 0.02, seed++);
    raw.set(name, tensorFrom(name, 'F32', shape, data));
  }
  return buildModel(config, raw, 'random', backend);
}

/**
 * Model FLOPs of one step: policy forward + backward (3x forward) + reference forward, for
 * `bodyTokens` positions through the decoder (sequences of up to T) and `headRows` through the LM head.
 * With frozen weights (LoRA) the backward computes input gradients only: 3x forward in all.
 */
function stepFlops(
  model: CausalLM,
  config: Json,
  bodyTokens: number,
  T: number,
  headRows: number,
  forwards = 4,
): number {
  let linear = 0;
  for (const [name, t] of model.params) {
    if (t.ndim === 2 && !/wte|wpe|embed_tokens|lm_head/.test(name)) linear += t.size;
  }
  const C = model.hiddenSize,
    V = model.vocabSize,
    L = model.numLayers;
  const heads = Number(config.num_attention_heads ?? config.n_head),
    Dh = C / heads;
  const avgKeys = (T + 1) / 2; // causal
  const perToken = 2 * linear + L * 4 * heads * Dh * avgKeys; // weights + (q k^T, p v)
  const forward = bodyTokens * perToken + headRows * 2 * C * V;
  return forwards * forward;
}

function batchOf(rows: number, T: number, V: number, prompt: number): TokenBatch {
  const ids = new Int32Array(rows * T),
    mask = new Int32Array(rows * T).fill(1),
    comp = new Float32Array(rows * T);
  let s = 7;
  for (let i = 0; i < ids.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    ids[i] = s % V;
    comp[i] = i % T >= prompt ? 1 : 0;
  }
  return { rows, T, inputIds: ids, attentionMask: mask, completionMask: comp };
}

function stats(be: Backend): { dispatches: number; submits: number; reads: number } {
  const rt = (be as Partial<WebGpuBackend>).rt;
  return rt ? { ...rt.stats } : { dispatches: 0, submits: 0, reads: 0 };
}

function adapterOf(be: Backend): string {
  return (be as Partial<WebGpuBackend>).adapter ?? be.name;
}

/** TFLOP/s of C = op(A) op(B) at m x k x n on the device, with tile configuration `tile`. */
async function benchMatmul(
  be: Backend,
  tile: string,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): Promise<void> {
  forceMatmulTile(tile === 'auto' ? null : tile);
  const a = E.tensor(noise(m * k, 1, 3), transA ? [k, m] : [m, k], 'f32', be);
  const b = E.tensor(noise(k * n, 1, 4), transB ? [n, k] : [k, n], 'f32', be);
  const run = (): E.Tensor => E.matmul(a, b, { transA, transB });
  const sync = async (t: E.Tensor): Promise<void> => {
    await E.tidyAsync(() => E.sum(E.narrow(E.reshape(t, [m * n]), 0, 0, 1)).item());
  };
  const warm = run();
  await sync(warm);
  warm.dispose();
  const reps = 10,
    t0 = performance.now();
  const outs: E.Tensor[] = [];
  for (let i = 0; i < reps; i++) outs.push(run());
  await sync(outs[reps - 1]);
  const s = (performance.now() - t0) / 1000;
  for (const o of outs) o.dispose();
  a.dispose();
  b.dispose();
  forceMatmulTile(null);
  console.log(
    JSON.stringify({
      bench: 'gpu-matmul',
      adapter: adapterOf(be),
      tile,
      m,
      k,
      n,
      transA,
      transB,
      ms: +((s / reps) * 1000).toFixed(3),
      tflops: +((2 * m * n * k * reps) / s / 1e12).toFixed(2),
    }),
  );
}

/** The matmuls of a DPO step at `tokens` rows of width d (MLP 4 d, vocabulary V), and square^3. */
async function matmulSweep(be: Backend, tokens: number, d: number, V: number, square: number): Promise<void> {
  const shapes: [string, number, number, number, boolean, boolean][] = [
    ['square', square, square, square, false, false],
    ['qkv', tokens, d, 3 * d, false, false],
    ['mlp down', tokens, 4 * d, d, false, false],
    ['lm head', tokens, d, V, false, true],
    ['lm head dx', tokens, V, d, false, false],
    ['mlp up dw', d, tokens, 4 * d, true, false],
  ];
  for (const [what, m, k, n, transA, transB] of shapes) {
    console.error(`matmul ${what}`);
    for (const tile of ['auto', ...Object.keys(MATMUL_TILES)]) await benchMatmul(be, tile, m, k, n, transA, transB);
  }
}

async function main(): Promise<void> {
  const presetName = arg('preset', 'gpt2-124m');
  const known = PRESETS[presetName];
  if (!known) throw new Error(`gpu-dpo: unknown preset '${presetName}' (presets: ${Object.keys(PRESETS).join(', ')})`);
  // --vocab / --layers shrink a preset (real widths on a software adapter with a 128 MiB buffer limit).
  const config: Json = { ...known.config };
  if (arg('vocab', '')) config.vocab_size = Number(arg('vocab', ''));
  if (arg('layers', ''))
    config[config.model_type === 'gpt2' ? 'n_layer' : 'num_hidden_layers'] = Number(arg('layers', ''));
  const preset: Preset = { ...known, config };
  const steps = Number(arg('steps', '5')),
    warmup = Number(arg('warmup', '2'));
  // all: the LM head on every position (what the PyTorch peer does); completion: on completion
  // positions only; shared: also each pair's prompt once for both completions (the trainer's savings).
  const head = arg('head', 'all'),
    headOnCompletion = head !== 'all';
  if (!['all', 'completion', 'shared'].includes(head))
    throw new Error(`gpu-dpo: --head must be all, completion or shared, got '${head}'`);
  const pairs = Number(arg('pairs', String(preset.pairs))),
    T = Number(arg('T', String(preset.T)));
  const prompt = Number(arg('prompt', String(Math.floor(T / 4))));
  const t0 = performance.now();
  if (process.argv.includes('--fast')) {
    process.env.TSDPO_DAWN_FLAGS =
      'enable-dawn-features=allow_unsafe_apis,disable_robustness,disable_workgroup_init;' +
      'disable-dawn-features=timestamp_quantization';
  }
  const be = await initEngine({ device: arg('device', 'webgpu') as DeviceName });
  if (process.argv.includes('--matmul')) {
    const c = preset.config as Record<string, number>;
    await matmulSweep(be, 2 * pairs * T, c.n_embd ?? c.hidden_size, c.vocab_size, Number(arg('square', '4096')));
  }
  const tile = arg('tile', '');
  forceMatmulTile(tile || null);
  const loraR = Number(arg('lora', '0'));
  const policy = randomModel(preset.config, be);
  // With LoRA the reference is the policy with its adapter off: no second model.
  const reference = loraR > 0 ? policy : randomModel(preset.config, be);
  const targets = policy.family === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
  const params =
    loraR > 0 ? newAdapter(policy, { r: loraR, alpha: 2 * loraR, targetModules: targets }).params : trainAll(policy);
  const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
  const rows = 2 * pairs;
  const batch = batchOf(rows, T, policy.vocabSize, prompt);
  const initS = (performance.now() - t0) / 1000;

  const shared: PairSequences[] = Array.from({ length: pairs }, (_, i) => {
    const row = (r: number, from: number, to: number) => Array.from(batch.inputIds.subarray(r * T + from, r * T + to));
    return { promptIds: row(i, 0, prompt), chosenIds: row(i, prompt, T), rejectedIds: row(pairs + i, prompt, T) };
  });
  const sharedLoss = (): E.Tensor => {
    const ref = E.noGrad(() => E.tidy(() => pairLogpsSharedPrompt(reference, shared, 0).seq));
    const pol = pairLogpsSharedPrompt(policy, shared, 0);
    return E.mean(
      LOSSES.sigmoid.fn(splitPairs({ policy: pol.seq, ref, tokens: pol.tokens }, pairs), {
        beta: 0.1,
        labelSmoothing: 0,
        simpoGamma: 0,
      }).losses,
    );
  };
  const loraLoss = (): E.Tensor => {
    const ref = E.noGrad(() => E.tidy(() => sequenceLogps(policy, batch, { headOnCompletion, adapter: false }).seq));
    const pol = sequenceLogps(policy, batch, { headOnCompletion });
    return E.mean(
      LOSSES.sigmoid.fn(splitPairs({ policy: pol.seq, ref, tokens: pol.tokens }, pairs), {
        beta: 0.1,
        labelSmoothing: 0,
        simpoGamma: 0,
      }).losses,
    );
  };
  let recordMs = 0; // host time spent recording the step's work (before the loss is read)
  const step = async (): Promise<number> => {
    const r0 = performance.now();
    const loss = E.tidy(() => {
      const l =
        head === 'shared'
          ? sharedLoss()
          : loraR > 0
            ? loraLoss()
            : batchSigmoidLoss(policy, reference, batch, { headOnCompletion });
      E.backward(l);
      return l;
    });
    opt.update(1e-5);
    opt.zeroGrad();
    recordMs += performance.now() - r0;
    const v = await loss.item(); // the one readback of a step: the logged loss
    loss.dispose();
    return v;
  };
  const t1 = performance.now();
  let loss = 0;
  for (let i = 0; i < warmup; i++) loss = await step();
  const warmS = (performance.now() - t1) / 1000;
  const s0 = stats(be),
    t2 = performance.now();
  recordMs = 0;
  for (let i = 0; i < steps; i++) loss = await step();
  const s = (performance.now() - t2) / 1000,
    s1 = stats(be);
  const headRows = headOnCompletion ? Array.from(batch.completionMask).reduce((x, y) => x + y, 0) - rows : rows * T;
  const bodyTokens = head === 'shared' ? pairs * prompt + rows * (T - prompt) : rows * T;
  const flops = stepFlops(policy, preset.config, bodyTokens, T, headRows, loraR > 0 ? 3 : 4) * steps;
  console.log(
    JSON.stringify({
      bench: 'gpu-dpo',
      preset: presetName,
      adapter: adapterOf(be),
      device: be.name,
      pairs,
      T,
      head,
      prompt,
      steps,
      step_ms: +((s / steps) * 1000).toFixed(1),
      record_ms: +(recordMs / steps).toFixed(1),
      tokens_per_s: Math.round((rows * T * steps) / s),
      tflops: +(flops / s / 1e12).toFixed(2),
      loss: +loss.toFixed(5),
      init_s: +initS.toFixed(1),
      warmup_s: +warmS.toFixed(1),
      dispatches_per_step: (s1.dispatches - s0.dispatches) / steps,
      submits_per_step: (s1.submits - s0.submits) / steps,
      reads_per_step: (s1.reads - s0.reads) / steps,
      fast: process.argv.includes('--fast'),
      tile: tile || 'auto',
      lora: loraR,
    }),
  );
  const rt = (be as Partial<WebGpuBackend>).rt;
  if (process.argv.includes('--profile') && rt?.startProfile()) {
    await step();
    const kernels = await rt.stopProfile();
    const total = kernels.reduce((x, k) => x + k.ms, 0);
    console.log(
      JSON.stringify({
        bench: 'gpu-profile',
        preset: presetName,
        head,
        adapter: adapterOf(be),
        gpu_ms: +total.toFixed(2),
        kernels: kernels.map((k) => ({ kernel: k.kernel, ms: +k.ms.toFixed(3), count: k.count })),
      }),
    );
  }
  opt.dispose();
}

main().catch((e) => {
  console.log(JSON.stringify({ bench: 'gpu-dpo', error: (e as Error).message }));
  process.exitCode = 1;
});
