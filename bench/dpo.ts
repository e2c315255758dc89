// DPO training-step benchmark against the PyTorch peer (bench/hf_dpo_cpu.py: transformers 5.17 on
// PyTorch 2.13 from the reference venv, what a TRL user runs; --peer debian: bench/torch_dpo_cpu.py
// on Debian's torch 1.13): same presets, GPT-2 architecture with random weights, policy +
// frozen reference, chosen and rejected in one batch, completion-only log-probs, sigmoid DPO, AdamW.
//
//   npm run bench:dpo -- --preset small                 one JSON line: ours
//   npm run bench:dpo -- --preset small --compare       ours and PyTorch alternately, best of 1 and 2 threads, ratio
//   npm run bench:dpo -- --preset small --savings       with the project's own savings switched on
//
// Modes: apples-to-apples (default) recomputes the reference every step and forms the full
// [2P, T, V] logits, like the peer. --savings runs each pair's prompt once for both completions
// (share_prompt), the LM head only on completion positions (pairLogpsSharedPrompt does both), and
// reuses reference log-probs computed once (what precompute_ref_log_probs does in training).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { backward, getBackend, mean, narrow, noGrad, tensor, tidy, tidyAsync, Rng } from '../src/core/index.js';
import type { CpuBackend } from '../src/backend/cpu/backend.js';
import { initEngine } from '../src/engine.js';
import { initModel } from '../src/models/init.js';
import { trainAll } from '../src/models/load.js';
import { LOSSES } from '../src/train/losses.js';
import { pairLogpsSharedPrompt, sequenceLogps, type PairSequences, type TokenBatch } from '../src/train/logps.js';
import type { CausalLM } from '../src/models/model.js';
import { DEFAULT_OPTIMIZER, Optimizer } from '../src/train/optim.js';

const PRESETS: Record<string, [number, number, number, number, number]> = {
  // layers, d_model, heads, vocab, context
  tiny: [2, 128, 4, 4096, 256],
  small: [4, 256, 8, 8192, 512],
  gpt2: [12, 768, 12, 50257, 1024],
};
const DEFAULTS: Record<string, { pairs: number; seq: number; prompt: number }> = {
  tiny: { pairs: 4, seq: 128, prompt: 64 },
  small: { pairs: 4, seq: 128, prompt: 64 },
  gpt2: { pairs: 2, seq: 128, prompt: 64 },
};

/** The preset's pairs / seq / prompt, overridable with --pairs, --seq, --prompt. */
function shapeOf(preset: string): { pairs: number; seq: number; prompt: number } {
  const d = DEFAULTS[preset];
  return {
    pairs: Number(arg('pairs', String(d.pairs))),
    seq: Number(arg('seq', String(d.seq))),
    prompt: Number(arg('prompt', String(d.prompt))),
  };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const flag = (name: string): boolean => process.argv.includes(`--${name}`);

async function ours(
  preset: string,
  threads: number,
  steps: number,
  savings: boolean,
): Promise<Record<string, unknown>> {
  const [L, d, h, V, ctx] = PRESETS[preset];
  const { pairs, seq, prompt } = shapeOf(preset);
  await initEngine({ device: 'cpu', threads });
  const config = {
    model_type: 'gpt2',
    vocab_size: V,
    n_positions: ctx,
    n_embd: d,
    n_layer: L,
    n_head: h,
    activation_function: 'gelu_new',
    tie_word_embeddings: true,
  };
  const policy = initModel(config, 0),
    reference = initModel(config, 1);
  const params = trainAll(policy);
  const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER });
  const B = 2 * pairs,
    rng = new Rng(0);
  const batch: TokenBatch = {
    rows: B,
    T: seq,
    inputIds: Int32Array.from({ length: B * seq }, () => rng.int(V)),
    attentionMask: new Int32Array(B * seq).fill(1),
    completionMask: Float32Array.from({ length: B * seq }, (_, i) => (i % seq >= prompt ? 1 : 0)),
  };
  // With the savings, chosen and rejected of a pair share their prompt (as in real preference
  // data), which then runs through the model once for both.
  const shared: PairSequences[] = Array.from({ length: pairs }, (_, i) => {
    const row = (r: number, from: number, to: number) =>
      Array.from(batch.inputIds.subarray(r * seq + from, r * seq + to));
    return { promptIds: row(i, 0, prompt), chosenIds: row(i, prompt, seq), rejectedIds: row(pairs + i, prompt, seq) };
  });
  const logps = (model: CausalLM) => (savings ? pairLogpsSharedPrompt(model, shared, 0) : sequenceLogps(model, batch));
  const cachedRef = savings ? await noGrad(() => tidyAsync(async () => logps(reference).seq.toArray())) : null;
  // The reference, then the policy's forward and backward in one scope (its activations freed),
  // then the optimizer step, as the trainer does it.
  const step = async (): Promise<number> => {
    const loss = await tidyAsync(async () => {
      const ref = cachedRef ? tensor(cachedRef) : noGrad(() => tidy(() => logps(reference).seq));
      const pol = logps(policy);
      const lens = tensor(Float32Array.from(pol.tokens));
      const l = mean(
        LOSSES.sigmoid.fn(
          {
            policyChosen: narrow(pol.seq, 0, 0, pairs),
            policyRejected: narrow(pol.seq, 0, pairs, pairs),
            refChosen: narrow(ref, 0, 0, pairs),
            refRejected: narrow(ref, 0, pairs, pairs),
            chosenLengths: narrow(lens, 0, 0, pairs),
            rejectedLengths: narrow(lens, 0, pairs, pairs),
          },
          { beta: 0.1, labelSmoothing: 0, simpoGamma: 0 },
        ).losses,
      );
      backward(l, { free: true });
      return l.item();
    });
    opt.update(1e-6);
    opt.zeroGrad();
    return loss;
  };

  await step(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await step();
    times.push((performance.now() - t) / 1000);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  let n = 0;
  for (const t of policy.params.values()) n += t.size;
  if (process.env.TSDPO_PROFILE === '1') await printProfile(steps + 1);
  if (process.env.TSDPO_MEMORY === '1') {
    const b = getBackend() as CpuBackend,
      mu = process.memoryUsage(),
      mib = (x: number) => Math.round(x / 2 ** 20);
    console.error(
      JSON.stringify({
        heap_reserved_mib: mib(b.rt.reservedBytes),
        live_mib: mib(b.liveBytes()),
        peak_live_mib: mib(b.peak),
        rss_mib: mib(mu.rss),
        js_heap_mib: mib(mu.heapUsed),
        array_buffers_mib: mib(mu.arrayBuffers),
      }),
    );
  }
  return {
    engine: 'tsdpo',
    preset,
    mode: savings ? 'savings: shared-prompt + lm-head-on-completion + cached-reference' : 'apples-to-apples',
    params: n,
    pairs,
    seq,
    threads,
    step_s: round(med),
    tokens_per_s: round((B * seq) / med, 1),
    peak_rss_mib: round(process.resourceUsage().maxRSS / 1024, 1),
  };
}

/** Per-kernel time per step and GFLOP/s (TSDPO_PROFILE=1), to stderr. */
async function printProfile(steps: number): Promise<void> {
  const b = getBackend() as CpuBackend;
  const rows = [...b.profileData].sort((x, y) => y[1].ms - x[1].ms);
  const total = rows.reduce((a, [, e]) => a + e.ms, 0);
  for (const [name, e] of rows) {
    console.error(
      JSON.stringify({
        kernel: name,
        ms_per_step: round(e.ms / steps, 2),
        share: round(e.ms / total, 3),
        calls_per_step: e.calls / steps,
        gflops: e.flops ? round(e.flops / (e.ms * 1e6), 1) : undefined,
      }),
    );
  }
}

function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * The peer: transformers' GPT2LMHeadModel (SDPA) on PyTorch 2.13 from the reference venv (what TRL
 * runs; `--peer hf`, the default), or the hand-written GPT-2 on Debian's python3-torch 1.13 (`--peer debian`).
 */
const PEERS: Record<string, { python: string; script: string; hint: string }> = {
  hf: {
    python: process.env.TSDPO_REFERENCE_PYTHON ?? `${ROOT}.venv-ref/bin/python`,
    script: `${ROOT}bench/hf_dpo_cpu.py`,
    hint: 'bash scripts/reference/setup-venv.sh',
  },
  debian: {
    python: '/usr/bin/python3',
    script: `${ROOT}bench/torch_dpo_cpu.py`,
    hint: 'apt-get install python3-torch libopenblas0-pthread',
  },
};

/** One measurement in a fresh process (so peak RSS is that configuration's own). */
function child(args: string[]): Record<string, unknown> | null {
  const r = spawnSync(process.execPath, [`${HERE}dpo.js`, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function torch(
  peer: (typeof PEERS)[string],
  preset: string,
  threads: number,
  steps: number,
): Record<string, unknown> | null {
  const { pairs, seq, prompt } = shapeOf(preset); // always passed: the peer's own defaults differ per preset
  const r = spawnSync(
    peer.python,
    [
      peer.script,
      '--preset',
      preset,
      '--threads',
      String(threads),
      '--steps',
      String(steps),
      '--pairs',
      String(pairs),
      '--seq',
      String(seq),
      '--prompt',
      String(prompt),
    ],
    { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) } },
  );
  if (r.status !== 0) return null;
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function torchAvailable(peer: (typeof PEERS)[string]): boolean {
  if (!existsSync(peer.python)) return false;
  return spawnSync(peer.python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}

async function main(): Promise<void> {
  const preset = arg('preset', 'small');
  if (!PRESETS[preset]) throw new Error(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
  const steps = Number(arg('steps', preset === 'gpt2' ? '3' : '5'));
  const savings = flag('savings');
  if (!flag('compare')) {
    const threads = Number(arg('threads', '0')) || undefined;
    const { cpuBackend } = await import('../src/engine.js');
    const t = threads ?? (await cpuBackend()).rt.threads;
    console.log(JSON.stringify(await ours(preset, t, steps, savings)));
    process.exit(0);
  }
  const rounds = Number(arg('rounds', '2'));
  const mine: Record<string, unknown>[] = [],
    peer: Record<string, unknown>[] = [];
  const peerName = arg('peer', 'hf');
  const peerDef = PEERS[peerName];
  if (!peerDef) throw new Error(`--peer must be one of ${Object.keys(PEERS).join(', ')}`);
  const hasTorch = torchAvailable(peerDef);
  if (!hasTorch) console.error(`PyTorch not found for ${peerDef.python} (${peerDef.hint}): measuring ours only`);
  // Alternate the engines so that machine noise hits both alike.
  for (let r = 0; r < rounds; r++) {
    for (const threads of [1, 2]) {
      const { pairs, seq, prompt } = shapeOf(preset);
      mine.push(
        child([
          '--preset',
          preset,
          '--threads',
          String(threads),
          '--steps',
          String(steps),
          ...(savings ? ['--savings'] : []),
          '--pairs',
          String(pairs),
          '--seq',
          String(seq),
          '--prompt',
          String(prompt),
        ])!,
      );
      if (hasTorch) {
        const p = torch(peerDef, preset, threads, steps);
        if (p) peer.push(p);
      }
    }
  }
  const best = (xs: Record<string, unknown>[]) =>
    xs.reduce((a, b) => ((b.tokens_per_s as number) > (a.tokens_per_s as number) ? b : a));
  const a = best(mine),
    b = peer.length ? best(peer) : null;
  console.log(
    JSON.stringify({
      bench: 'dpo_step',
      preset,
      mode: a.mode,
      peer: peerName,
      ours: a,
      pytorch: b,
      ratio: b ? round((a.tokens_per_s as number) / (b.tokens_per_s as number), 3) : null,
      rss_ratio: b ? round((a.peak_rss_mib as number) / (b.peak_rss_mib as number), 3) : null,
    }),
  );
  process.exit(0);
}

await main();
