// GRPO and RLOO as an objective of the shared training loop (src/train/trainer.ts). Each step's
// rows come as groups of num_generations completions of one prompt; at the start of a generation
// cycle (every num_iterations steps) the step's completions are sampled with the KV-cache sampler,
// scored by the reward functions, turned into advantages, shuffled and split into the step's
// micro-batches, as TRL 1.13's GRPOTrainer / RLOOTrainer do with steps_per_generation =
// gradient_accumulation_steps. Shapes: B completions, Lp prompt and Tc completion positions.
import { affine, backward, detach, narrow, noGrad, reshape, tensor, tidyAsync, type Tensor } from '../core/index.js';
import { mulberry32, Rng } from '../core/random.js';
import { generate } from '../eval/generate.js';
import type { LoraDropout } from '../nn/linear.js';
import type { CausalLM } from '../models/model.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { headLogps } from '../train/chunked-head.js';
import { positionStats, STAT_COLUMNS } from '../train/logps.js';
import type { NamedParam } from '../train/optim.js';
import { torchRandperm } from '../train/torch-order.js';
import type { MicroResult, Objective } from '../train/trainer.js';
import { groupAdvantages, leaveOneOutAdvantages, mean, std, type ScaleRewards } from './grpo-advantages.js';
import type { RlConfig } from './grpo-config.js';
import { grpoLoss, rlooLoss, type GRPO_LOSSES, type PolicyInputs } from './losses.js';
import type { RlPrompt } from './prompts.js';
import { scoreAll, type RewardFunc } from './rewards.js';

/** Samples completion ids for prompt ids (one row per completion). Tests replace it by fixed completions. */
export type Rollout = (promptIds: number[][], promptIndex: number[]) => Promise<number[][]>;

/** Where reference log-probs come from (only with beta != 0). */
export type RlReference = { kind: 'model'; model: CausalLM } | { kind: 'adapter-off' } | { kind: 'none' };

export interface RlParts {
  method: 'grpo' | 'rloo';
  cfg: RlConfig;
  policy: CausalLM;
  params: NamedParam[];
  reference: RlReference;
  tok: TextTokenizer;
  prompts: RlPrompt[];
  rewards: { funcs: RewardFunc[]; weights: number[] };
  padId: number;
  loraDropout: number;
  rollout?: Rollout;
  /** Rows of logits the LM head makes at once (default: 256 MiB of them; see train/chunked-head.ts). */
  headChunkRows?: number;
  /** Sees each micro-batch's advantages and per-token log-probs (parity tests). */
  onMicro?: (m: { advantages: number[]; logps: number[][] }) => void;
  saveWeights(dir: string): Promise<void>;
  loadWeights(dir: string): Promise<void>;
}

/** One sampled completion, ready for the loss. */
interface Row {
  prompt: number;
  promptIds: number[];
  completionIds: number[];
  /** 0 when mask_truncated_completions drops this truncated completion from the loss. */
  keep: number;
  advantage: number;
  /** log pi_old per completion token (num_iterations > 1, RLOO), and log pi_ref (beta != 0). */
  old: Float32Array | null;
  ref: Float32Array | null;
}

interface Cycle {
  micros: Row[][];
  /** Prompt widths every micro-batch pads to (TRL pads the whole generation batch at once). */
  Lp: number;
  Tc: number;
  generationTokens: number;
  metrics: Record<string, number>;
  tokens: number;
}

/**
 * A padded batch of prompt + completion rows: prompts left-padded to Lp, completions right-padded
 * to Tc; attention on real prompt tokens and on the completion of kept rows (TRL's masks).
 */
function packRows(rows: readonly Row[], Lp: number, Tc: number, padId: number) {
  const B = rows.length,
    L = Lp + Tc;
  const ids = new Int32Array(B * L).fill(padId),
    attn = new Float32Array(B * L);
  const targets = new Int32Array(B * Tc).fill(-100),
    mask = new Float32Array(B * Tc);
  rows.forEach((r, b) => {
    const off = Lp - r.promptIds.length;
    r.promptIds.forEach((id, t) => {
      ids[b * L + off + t] = id;
      attn[b * L + off + t] = 1;
    });
    r.completionIds.forEach((id, t) => {
      ids[b * L + Lp + t] = id;
      attn[b * L + Lp + t] = r.keep;
      targets[b * Tc + t] = id;
      mask[b * Tc + t] = r.keep;
    });
  });
  return { B, L, ids, attn, targets, mask };
}

/**
 * Per-token log-probs (B, Tc) of the completions at `temperature` (logits / temperature, as TRL),
 * 0 at padding; with stats also per-position statistics (positionStats: entropy and others). Positions
 * are 0..L-1 whatever the padding, as transformers' forward without position_ids. The LM head runs
 * in chunks of rows (train/chunked-head.ts): the (B * Tc, V) logits never exist at once.
 */
export function completionLogps(
  model: CausalLM,
  rows: readonly Row[],
  Lp: number,
  Tc: number,
  padId: number,
  temperature: number,
  opts: { adapter?: boolean; stats?: boolean; dropout?: LoraDropout | null; headChunkRows?: number } = {},
): { logps: Tensor; stats?: Tensor; mask: Float32Array } {
  const p = packRows(rows, Lp, Tc, padId);
  const hidden = model.body(tensor(p.ids, [p.B, p.L], 'i32'), {
    attentionMask: tensor(p.attn, [p.B, p.L]),
    adapter: opts.adapter ?? true,
    dropout: opts.dropout,
  }); // (B, L, C)
  const h = reshape(narrow(hidden, 1, Lp - 1, Tc), [p.B * Tc, model.hiddenSize]); // positions predicting completion tokens
  const head = headLogps(model, h, p.targets, {
    scale: 1 / temperature,
    stats: opts.stats ? positionStats : undefined,
    chunkRows: opts.headChunkRows,
  }); // (B * Tc), stats (B * Tc, STAT_COLUMNS)
  return { logps: reshape(head.logps, [p.B, Tc]), stats: head.stats ?? undefined, mask: p.mask };
}

/** Row r of a (B, Tc) host array. */
const rowOf = (a: Float32Array, r: number, Tc: number): Float32Array => a.slice(r * Tc, (r + 1) * Tc);

/** min / max ignoring NaN (NaN when all are). */
const nanMin = (xs: number[]): number => {
  const v = xs.filter((x) => !Number.isNaN(x));
  return v.length ? Math.min(...v) : NaN;
};
const nanMax = (xs: number[]): number => {
  const v = xs.filter((x) => !Number.isNaN(x));
  return v.length ? Math.max(...v) : NaN;
};

export class RlObjective implements Objective {
  readonly size: number;
  readonly params: NamedParam[];
  readonly loraDropout: number;
  readonly permutation: (size: number, seed: number, epoch: number) => Int32Array;
  private cycle: Cycle | null = null;
  private microIndex = 0;
  private fresh = false;
  private readonly rng: Rng;
  private readonly G: number;

  constructor(readonly parts: RlParts) {
    const { cfg, prompts } = parts;
    const G = (this.G = cfg.num_generations);
    const name = parts.method;
    if (G < 2)
      throw new Error(`--num_generations ${G}: ${name} needs at least 2 completions per prompt to compare them`);
    const bs = cfg.per_device_train_batch_size,
      ga = cfg.gradient_accumulation_steps;
    if ((bs * ga) % G !== 0) {
      const fit = Array.from({ length: G }, (_, i) => bs + i + 1).find((b) => (b * ga) % G === 0);
      throw new Error(
        `${name}: per_device_train_batch_size (${bs}) x gradient_accumulation_steps (${ga}) = ${bs * ga} completions per step ` +
          `is not a multiple of num_generations (${G}), so a prompt's group would be split between steps. Change one of them: e.g. ` +
          `--per_device_train_batch_size ${fit ?? G}, or --num_generations a divisor of ${bs * ga}` +
          `${ga > 1 ? `, or --gradient_accumulation_steps ${G / gcd(G, bs)}` : ''}.`,
      );
    }
    const perStep = (bs * ga) / G; // prompts per generation batch
    const blocks = Math.floor(prompts.length / perStep);
    if (blocks === 0)
      throw new Error(
        `${name}: a step samples ${perStep} prompts x ${G} completions, ` +
          `but ${cfg.dataset} has ${prompts.length} prompts; lower per_device_train_batch_size or add prompts`,
      );
    // An epoch: every full block of perStep prompts (TRL's RepeatSampler drops the rest), each
    // prompt G times in a row, each block repeated num_iterations times.
    const it = cfg.num_iterations;
    this.size = blocks * perStep * G * it;
    this.permutation = (_size, seed, epoch) => {
      const order = torchRandperm(prompts.length, seed + epoch),
        out = new Int32Array(this.size);
      let k = 0;
      for (let b = 0; b < blocks; b++)
        for (let i = 0; i < it; i++)
          for (let j = 0; j < perStep; j++) for (let g = 0; g < G; g++) out[k++] = order[b * perStep + j] * G + g;
      return out;
    };
    this.params = parts.params;
    this.loraDropout = parts.loraDropout;
    this.rng = new Rng(cfg.seed);
  }

  async beginStep(step: number, batches: number[][]): Promise<void> {
    this.microIndex = 0;
    this.fresh = step % this.parts.cfg.num_iterations === 0 || this.cycle === null;
    if (this.fresh) this.cycle = await this.generateCycle(step, batches);
  }

  private get epsilons(): { epsilonLow: number; epsilonHigh: number } {
    const c = this.parts.cfg;
    return { epsilonLow: c.epsilon, epsilonHigh: c.epsilon_high >= 0 ? c.epsilon_high : c.epsilon };
  }

  /** Samples, scores and splits one generation batch (the step's rows). */
  private async generateCycle(step: number, batches: number[][]): Promise<Cycle> {
    const { cfg, tok, policy } = this.parts;
    const G = this.G;
    const rowsIdx = batches.flat();
    const promptIndex = rowsIdx.map((r) => Math.floor(r / G));
    const prompts = promptIndex.map((i) => this.parts.prompts[i]);
    const promptIds = prompts.map((p) => p.ids);
    const eos = tok.eosId ?? -1;
    const completions = this.parts.rollout
      ? await this.parts.rollout(promptIds, promptIndex)
      : (
          await tidyAsync(() =>
            generate(policy, promptIds, {
              maxNewTokens: cfg.max_completion_length,
              doSample: true,
              temperature: cfg.temperature,
              topK: cfg.top_k,
              topP: cfg.top_p,
              eosIds: tok.eosIds.length ? tok.eosIds : [eos],
              padId: this.parts.padId,
              rng: this.rng,
            }),
          )
        ).tokens;
    const N = completions.length;
    const truncated = completions.map(
      (c) => c.length === 0 || (c[c.length - 1] !== eos && c[c.length - 1] !== this.parts.padId),
    );
    const rows: Row[] = completions.map((c, i) => ({
      prompt: promptIndex[i],
      promptIds: promptIds[i],
      completionIds: c,
      keep: cfg.mask_truncated_completions && truncated[i] ? 0 : 1,
      advantage: 0,
      old: null,
      ref: null,
    }));
    const Lp = Math.max(...promptIds.map((p) => p.length)),
      Tc = Math.max(1, ...completions.map((c) => c.length));

    // Sampling-time and reference log-probs, without gradient, in micro-batch-sized chunks.
    const bs = cfg.per_device_train_batch_size;
    const needOld = cfg.num_iterations > 1 || this.parts.method === 'rloo';
    const ref = this.parts.reference;
    const pass = async (which: 'old' | 'ref'): Promise<void> => {
      for (let s = 0; s < N; s += bs) {
        const chunk = rows.slice(s, s + bs);
        const model = which === 'ref' && ref.kind === 'model' ? ref.model : policy;
        const adapter = !(which === 'ref' && ref.kind === 'adapter-off');
        const values = (await noGrad(() =>
          tidyAsync(() =>
            completionLogps(model, chunk, Lp, Tc, this.parts.padId, cfg.temperature, {
              adapter,
              headChunkRows: this.parts.headChunkRows,
            }).logps.toArray(),
          ),
        )) as Float32Array;
        chunk.forEach((r, b) => {
          r[which] = rowOf(values, b, Tc);
        });
      }
    };
    if (needOld) await pass('old');
    if (cfg.beta !== 0 && ref.kind !== 'none') await pass('ref');

    // Rewards: one column per function, summed with the weights.
    const texts = completions.map((c) => tok.decode(c, { skipSpecialTokens: true }));
    const columns: Record<string, unknown[]> = {};
    for (const p of prompts) for (const k of Object.keys(p.columns)) columns[k] = [];
    for (const k of Object.keys(columns)) columns[k] = prompts.map((p) => p.columns[k]);
    const perFunc = await scoreAll(this.parts.rewards.funcs, {
      prompts: prompts.map((p) => p.value),
      promptTexts: prompts.map((p) => p.text),
      completions: texts.map((t, i) => (prompts[i].conversational ? [{ role: 'assistant', content: t }] : t)),
      completionTexts: texts,
      completionIds: completions,
      columns,
    });
    const w = this.parts.rewards.weights;
    const total = perFunc.map((r) => r.reduce((a, v, j) => a + v * w[j], 0));
    const metrics: Record<string, number> = {};

    let advantages: number[], stdZero: boolean[];
    if (this.parts.method === 'grpo') {
      ({ advantages, stdZero } = groupAdvantages(total, G, (cfg.scale_rewards ?? 'group') as ScaleRewards));
    } else {
      // RLOO: clip the reward, then fold the KL to the reference into it (k1, summed over tokens).
      let shaped = total;
      const clip = (cfg.reward_clip_range ?? []).map(Number);
      if (clip.length === 2) shaped = shaped.map((r) => Math.min(Math.max(r, clip[0]), clip[1]));
      if (cfg.beta !== 0) {
        let klSum = 0,
          count = 0;
        shaped = shaped.map((r, i) => {
          const row = rows[i];
          let kl = 0;
          for (let t = 0; t < row.completionIds.length; t++) kl += row.keep * (row.old![t] - row.ref![t]);
          klSum += kl;
          count += row.keep * row.completionIds.length;
          return r - cfg.beta * kl;
        });
        metrics.kl = klSum / Math.max(1, count);
      }
      ({ advantages, stdZero } = leaveOneOutAdvantages(shaped, G, cfg.normalize_advantages ?? false));
    }
    rows.forEach((r, i) => {
      r.advantage = advantages[i];
    });

    // TRL's rollout metrics (names as TRL 1.13 logs them).
    const lengths = completions.map((c) => c.length);
    const terminated = lengths.filter((_, i) => !truncated[i]);
    const term = terminated.length ? terminated : [0];
    Object.assign(metrics, {
      'completions/mean_length': mean(lengths),
      'completions/min_length': Math.min(...lengths),
      'completions/max_length': Math.max(...lengths),
      'completions/clipped_ratio': truncated.filter(Boolean).length / N,
      'completions/mean_terminated_length': mean(term),
      'completions/min_terminated_length': Math.min(...term),
      'completions/max_terminated_length': Math.max(...term),
    });
    this.parts.rewards.funcs.forEach((f, j) => {
      const col = perFunc.map((r) => r[j]);
      metrics[`rewards/${f.name}/mean`] = mean(col);
      metrics[`rewards/${f.name}/std`] = std(col);
    });
    metrics.reward = mean(total);
    metrics.reward_std = std(total);
    metrics.frac_reward_zero_std = stdZero.filter(Boolean).length / N;

    // Shuffle the generation batch, then cut it into the step's micro-batches.
    const rand = mulberry32((cfg.seed * 1000003 + step) >>> 0);
    const order = Array.from(rows.keys());
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const micros: Row[][] = [];
    let at = 0;
    for (const b of batches) {
      micros.push(order.slice(at, at + b.length).map((i) => rows[i]));
      at += b.length;
    }
    const generationTokens = rows.reduce((a, r) => a + r.keep * r.completionIds.length, 0);
    const tokens = promptIds.reduce((a, p) => a + p.length, 0) + lengths.reduce((a, n) => a + n, 0);
    return { micros, Lp, Tc, generationTokens, metrics, tokens };
  }

  async micro(_indices: number[], scale: number, _step?: number, dropout?: LoraDropout | null): Promise<MicroResult> {
    const c = this.cycle!;
    const m = this.microIndex++;
    const rows = c.micros[m];
    const { cfg } = this.parts;
    const B = rows.length,
      Tc = c.Tc;
    const host = (pick: (r: Row) => Float32Array | null): Tensor => {
      const a = new Float32Array(B * Tc);
      rows.forEach((r, b) => {
        const v = pick(r);
        if (v) a.set(v, b * Tc);
      });
      return tensor(a, [B, Tc]);
    };
    return tidyAsync(async () => {
      const out = completionLogps(this.parts.policy, rows, c.Lp, Tc, this.parts.padId, cfg.temperature, {
        stats: true,
        dropout,
        headChunkRows: this.parts.headChunkRows,
      });
      const useOld = cfg.num_iterations > 1 || this.parts.method === 'rloo';
      const x: PolicyInputs = {
        logps: out.logps,
        oldLogps: useOld ? host((r) => r.old) : detach(out.logps),
        refLogps: cfg.beta !== 0 ? host((r) => r.ref) : null,
        advantages: Float64Array.from(rows, (r) => r.advantage),
        mask: out.mask,
        B,
        T: Tc,
      };
      const loss =
        this.parts.method === 'grpo'
          ? grpoLoss((cfg.loss_type ?? 'dapo') as keyof typeof GRPO_LOSSES, x, {
              ...this.epsilons,
              beta: cfg.beta,
              maxCompletionLength: cfg.max_completion_length,
              generationTokens: c.generationTokens,
              micros: c.micros.length,
            })
          : rlooLoss(x, this.epsilons);
      const lossOut = detach(loss);
      const logps = (await detach(out.logps).toArray()) as Float32Array;
      const old = (await x.oldLogps.toArray()) as Float32Array;
      const ref = x.refLogps ? ((await x.refLogps.toArray()) as Float32Array) : null;
      const stats = (await out.stats!.toArray()) as Float32Array;
      backward(affine(loss, scale), { free: true });
      const value = await lossOut.item();
      const metrics = this.lossMetrics(x, logps, old, ref, stats);
      this.parts.onMicro?.({
        advantages: rows.map((r) => r.advantage),
        logps: rows.map((r, b) => Array.from(logps.subarray(b * Tc, b * Tc + r.completionIds.length))),
      });
      const first = this.fresh && m === 0;
      return { loss: value, metrics: first ? { ...c.metrics, ...metrics } : metrics, tokens: first ? c.tokens : 0 };
    });
  }

  /** TRL's per-micro-batch metrics: entropy, kl (GRPO with beta), clip ratios. */
  private lossMetrics(
    x: PolicyInputs,
    logps: Float32Array,
    old: Float32Array,
    ref: Float32Array | null,
    stats: Float32Array,
  ): Record<string, number> {
    const { B, T, mask } = x;
    const { epsilonLow, epsilonHigh } = this.epsilons;
    const tokens = mask.reduce((a, v) => a + v, 0);
    const maskedMean = (f: (i: number) => number): number => {
      let s = 0;
      for (let i = 0; i < B * T; i++) if (mask[i]) s += f(i);
      return s / Math.max(1, tokens);
    };
    const metrics: Record<string, number> = { entropy: maskedMean((i) => stats[i * STAT_COLUMNS + 1]) };
    const adv = x.advantages;
    if (this.parts.method === 'rloo') {
      const low: number[] = [],
        high: number[] = [];
      for (let b = 0; b < B; b++) {
        let d = 0;
        for (let t = 0; t < T; t++) d += mask[b * T + t] * (logps[b * T + t] - old[b * T + t]);
        const ratio = Math.exp(d);
        low.push(ratio < 1 - epsilonLow && adv[b] < 0 ? 1 : 0);
        high.push(ratio > 1 + epsilonHigh && adv[b] > 0 ? 1 : 0);
      }
      return {
        ...metrics,
        'clip_ratio/low_mean': mean(low),
        'clip_ratio/low_min': Math.min(...low),
        'clip_ratio/high_mean': mean(high),
        'clip_ratio/high_max': Math.max(...high),
        'clip_ratio/region_mean': mean(low.map((l, b) => Math.max(l, high[b]))),
      };
    }
    if (this.parts.cfg.beta !== 0 && ref)
      metrics.kl = maskedMean((i) => {
        const d = ref[i] - logps[i];
        return (Math.exp(d) - d - 1) * Math.exp(logps[i] - old[i]);
      });
    const ratio = (i: number): number => Math.exp(logps[i] - old[i]);
    const isLow = (i: number): number => (ratio(i) < 1 - epsilonLow && adv[Math.floor(i / T)] < 0 ? 1 : 0);
    const isHigh = (i: number): number => (ratio(i) > 1 + epsilonHigh && adv[Math.floor(i / T)] > 0 ? 1 : 0);
    const perSeq = (f: (i: number) => number): number[] =>
      Array.from({ length: B }, (_, b) => {
        let s = 0,
          n = 0;
        for (let t = 0; t < T; t++) {
          const i = b * T + t;
          s += mask[i] * f(i);
          n += mask[i];
        }
        return s / n; // NaN for a fully masked row, which nanmin / nanmax skip (as TRL)
      });
    return {
      ...metrics,
      'clip_ratio/low_mean': maskedMean(isLow),
      'clip_ratio/high_mean': maskedMean(isHigh),
      'clip_ratio/region_mean': maskedMean((i) => Math.max(isLow(i), isHigh(i))),
      'clip_ratio/low_min': nanMin(perSeq(isLow)),
      'clip_ratio/high_max': nanMax(perSeq(isHigh)),
    };
  }

  async evaluate(): Promise<null> {
    return null;
  }

  saveWeights(dir: string): Promise<void> {
    return this.parts.saveWeights(dir);
  }

  loadWeights(dir: string): Promise<void> {
    return this.parts.loadWeights(dir);
  }
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
