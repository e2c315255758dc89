// Optimizers: the references against the algorithms as PyTorch documents them, written out
// independently here (3 steps), AdamW against torch's own step on the gpt2 fixture; the
// WebAssembly kernels against the references; sumsq.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import * as ref from '../../src/backend/ref/optim.js';
import * as fast from '../../src/backend/cpu/fast/optim.js';
import { allRuntimes, assertClose, closeRuntimes, f32, Mem, randn, rng } from './helpers.js';

after(closeRuntimes);

const ROOT = new URL('../../../', import.meta.url);

/**
 * A minimal safetensors reader for the fixtures (F32 tensors only): 8-byte little-endian header
 * length, a JSON header {name: {dtype, shape, data_offsets}}, then the data.
 */
function readSafetensors(path: string): Map<string, { shape: number[]; data: Float32Array }> {
  const buf = readFileSync(new URL(path, ROOT));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__' || t.dtype !== 'F32') continue;
    const [b, e] = t.data_offsets;
    const bytes = buf.subarray(8 + n + b, 8 + n + e);
    out.set(name, {
      shape: t.shape,
      data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    });
  }
  return out;
}

const LR = 1e-3,
  B1 = 0.9,
  B2 = 0.999,
  EPS = 1e-8,
  WD = 0.01;

/** torch.optim.AdamW as documented (algorithm box), on plain arrays, t = 1.. */
function torchAdamW(theta: number[], grads: number[][]): number[] {
  const m = theta.map(() => 0),
    v = theta.map(() => 0),
    th = theta.slice();
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < th.length; i++) {
      th[i] = th[i] - LR * WD * th[i];
      m[i] = B1 * m[i] + (1 - B1) * g[i];
      v[i] = B2 * v[i] + (1 - B2) * g[i] ** 2;
      const mhat = m[i] / (1 - B1 ** t),
        vhat = v[i] / (1 - B2 ** t);
      th[i] = th[i] - (LR * mhat) / (Math.sqrt(vhat) + EPS);
    }
  });
  return th;
}

/** torch.optim.RMSprop as documented: centered False, momentum 0. */
function torchRMSprop(
  theta: number[],
  grads: number[][],
  lr: number,
  alpha: number,
  eps: number,
  wd: number,
): number[] {
  const v = theta.map(() => 0),
    th = theta.slice();
  for (const g0 of grads) {
    for (let i = 0; i < th.length; i++) {
      const g = g0[i] + wd * th[i];
      v[i] = alpha * v[i] + (1 - alpha) * g * g;
      th[i] = th[i] - (lr * g) / (Math.sqrt(v[i]) + eps);
    }
  }
  return th;
}

/** torch.optim.SGD as documented: dampening 0, nesterov False; b_1 = g_1. */
function torchSGD(theta: number[], grads: number[][], lr: number, mu: number, wd: number): number[] {
  const b = theta.map(() => 0),
    th = theta.slice();
  grads.forEach((g0, k) => {
    for (let i = 0; i < th.length; i++) {
      let g = g0[i] + wd * th[i];
      if (mu !== 0) {
        b[i] = k === 0 ? g : mu * b[i] + g;
        g = b[i];
      }
      th[i] = th[i] - lr * g;
    }
  });
  return th;
}

/** Three steps of `step(p, g, state..., t)` on copies; returns the parameters. */
function run3(
  n: number,
  p0: Float64Array,
  grads: Float64Array[],
  step: (p: Float64Array, g: Float64Array, s: Float64Array[], t: number) => void,
  states: number,
): Float64Array {
  const p = p0.slice(),
    s = Array.from({ length: states }, () => new Float64Array(n));
  grads.forEach((g, k) => step(p, g, s, k + 1));
  return p;
}

test('reference adamw, rmsprop and sgd follow the PyTorch algorithms over 3 steps (float64)', () => {
  const rand = rng(61),
    n = 50;
  const p0 = randn(rand, n),
    grads = [0, 1, 2].map(() => randn(rand, n, 0.1));
  const g = grads.map((a) => Array.from(a));
  const adam = run3(
    n,
    p0,
    grads,
    (p, gr, [m, v], t) => ref.adamw(p, gr, m, v, n, LR, B1, B2, EPS, WD, 1 - B1 ** t, 1 - B2 ** t),
    2,
  );
  assertClose(adam, torchAdamW(Array.from(p0), g), 'adamw vs torch algorithm', 1e-14, 1e-15);
  // first step in closed form: m/bc1 = g, sqrt(v/bc2) = |g|
  const one = run3(
    n,
    p0,
    [grads[0]],
    (p, gr, [m, v], t) => ref.adamw(p, gr, m, v, n, LR, B1, B2, EPS, WD, 1 - B1 ** t, 1 - B2 ** t),
    2,
  );
  assertClose(
    one,
    p0.map((x, i) => x * (1 - LR * WD) - (LR * grads[0][i]) / (Math.abs(grads[0][i]) + EPS)),
    'adamw step 1 closed form',
    1e-13,
    1e-15,
  );
  for (const wd of [0, 0.1]) {
    const rms = run3(n, p0, grads, (p, gr, [sq]) => ref.rmsprop(p, gr, sq, n, 1e-2, 0.99, 1e-8, wd), 1);
    assertClose(
      rms,
      torchRMSprop(Array.from(p0), g, 1e-2, 0.99, 1e-8, wd),
      `rmsprop wd ${wd} vs torch algorithm`,
      1e-14,
      1e-15,
    );
    for (const mu of [0, 0.9]) {
      const s = run3(n, p0, grads, (p, gr, [buf]) => ref.sgd(p, gr, mu === 0 ? null : buf, n, 0.1, mu, wd), 1);
      assertClose(
        s,
        torchSGD(Array.from(p0), g, 0.1, mu, wd),
        `sgd momentum ${mu} wd ${wd} vs torch algorithm`,
        1e-14,
        1e-15,
      );
    }
  }
});

test('adamw (reference and wasm) reproduces torch.optim.AdamW step 1 on the gpt2 fixture', async () => {
  const expected = readSafetensors('test/fixtures/hf-tiny/gpt2/expected.safetensors');
  const policy = readSafetensors('test/fixtures/hf-tiny/gpt2/policy/model.safetensors');
  const names = [...expected.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
  assert.ok(names.length >= 20, `expected the gpt2 parameters' grads in the fixture, found ${names.length}`);
  const runtimes = await allRuntimes();
  for (const name of names) {
    const p0 = policy.get(name),
      g = expected.get(`grad.${name}`)!,
      want = expected.get(`adamw_step1.${name}`);
    assert.ok(p0 && want, `fixture: ${name} missing from policy/model.safetensors or adamw_step1.*`);
    const n = p0.data.length;
    const p = Float64Array.from(p0.data),
      m = new Float64Array(n),
      v = new Float64Array(n);
    ref.adamw(p, Float64Array.from(g.data), m, v, n, LR, B1, B2, EPS, WD, 1 - B1, 1 - B2);
    assertClose(p, want.data, `reference adamw ${name}`, 1e-6, 1e-7);
    for (const { rt, label } of runtimes) {
      const mem = new Mem(rt);
      const pp = mem.f32(p0.data);
      fast.adamw(rt, pp, mem.f32(g.data), mem.zeros(n), mem.zeros(n), n, LR, B1, B2, EPS, WD, 1 - B1, 1 - B2);
      assertClose(mem.read(pp, n), want.data, `wasm adamw ${name} (${label})`, 1e-6, 1e-7);
      mem.free();
    }
  }
});

test('wasm adamw, rmsprop, sgd match the reference over 3 steps', async () => {
  const runtimes = await allRuntimes();
  for (const n of [1, 7, 33, 100003]) {
    const rand = rng(n);
    const p0 = f32(randn(rand, n)),
      grads = [0, 1, 2].map(() => f32(randn(rand, n, 0.1)));
    const cases: {
      what: string;
      states: number;
      ref: (p: Float64Array, g: Float64Array, s: Float64Array[], t: number) => void;
      fast: (
        rt: import('../../src/backend/cpu/runtime.js').KernelRuntime,
        p: number,
        g: number,
        s: number[],
        t: number,
      ) => void;
    }[] = [
      {
        what: 'adamw',
        states: 2,
        ref: (p, g, [m, v], t) => ref.adamw(p, g, m, v, n, LR, B1, B2, EPS, WD, 1 - B1 ** t, 1 - B2 ** t),
        fast: (rt, p, g, [m, v], t) => fast.adamw(rt, p, g, m, v, n, LR, B1, B2, EPS, WD, 1 - B1 ** t, 1 - B2 ** t),
      },
      {
        what: 'rmsprop',
        states: 1,
        ref: (p, g, [sq]) => ref.rmsprop(p, g, sq, n, 1e-2, 0.99, 1e-8, 0.1),
        fast: (rt, p, g, [sq]) => fast.rmsprop(rt, p, g, sq, n, 1e-2, 0.99, 1e-8, 0.1),
      },
      {
        what: 'sgd',
        states: 1,
        ref: (p, g, [buf]) => ref.sgd(p, g, buf, n, 0.1, 0.9, 0.01),
        fast: (rt, p, g, [buf]) => fast.sgd(rt, p, g, buf, n, 0.1, 0.9, 0.01),
      },
      {
        what: 'sgd (no momentum)',
        states: 0,
        ref: (p, g) => ref.sgd(p, g, null, n, 0.1, 0, 0),
        fast: (rt, p, g) => fast.sgd(rt, p, g, 0, n, 0.1, 0, 0),
      },
    ];
    for (const c of cases) {
      const want = run3(n, p0, grads, c.ref, c.states);
      for (const { rt, label } of runtimes) {
        const mem = new Mem(rt, n === 7 ? 4 : 0);
        const pp = mem.f32(p0),
          ps = Array.from({ length: c.states }, () => mem.zeros(n));
        grads.forEach((g, k) => c.fast(rt, pp, mem.f32(g), ps, k + 1));
        // rmsprop's first steps are ~ lr sign(g + wd p): where g + wd p cancels in float32 the
        // step's size moves by more than an ulp of p
        assertClose(mem.read(pp, n), want, `${c.what} n=${n} (${label})`, 2e-6, c.what === 'rmsprop' ? 1e-5 : 1e-7);
        mem.free();
      }
    }
  }
});

test('wasm sumsq gives the float64 chunk sums of the reference', async () => {
  for (const n of [1, 7, 33, ref.SUMSQ_CHUNK * 3 + 5]) {
    const x = f32(randn(rng(n), n, 10));
    const chunks = fast.sumsqChunks(n),
      want = new Float64Array(chunks);
    ref.sumsq(x, n, want);
    for (const { rt, label } of await allRuntimes()) {
      const mem = new Mem(rt);
      const po = mem.alloc(chunks * 8);
      fast.sumsq(rt, mem.f32(x), n, po);
      assertClose(mem.readF64(po, chunks), want, `sumsq n=${n} (${label})`, 1e-13, 0);
      mem.free();
    }
  }
});
