// Tensors beyond the WebAssembly memory (src/backend/cpu/pager.ts): with the memory limited to a
// few MiB, tensors move out to host memory and back, every value survives, kernels see their
// operands, and a training run gives the same numbers bit for bit as with the memory unlimited.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CpuBackend, type CpuOptions, type CpuStorage } from '../../src/backend/cpu/backend.js';
import { loadNative, nativeLoadError } from '../../src/backend/cpu/native.js';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import type { Storage } from '../../src/core/backend.js';
import { Rng } from '../../src/core/random.js';
import { cpuBackend, initEngine } from '../../src/engine.js';
import { runDpo } from '../../src/train/run.js';
import { readMetrics } from '../../src/train/trainer.js';
import { COMMON_OPTIONS, defaultsOf, DPO_OPTIONS, type DpoConfig } from '../../src/train/config.js';
import { tempRoot, tinyModel, tinyPreferences } from '../train/tiny.js';

const MiB = 1 << 20;
let rt: KernelRuntime;
let cpu: CpuBackend;

before(async () => {
  rt = await KernelRuntime.create({ threads: 2 });
  cpu = new CpuBackend(rt, {});
});
after(async () => {
  await rt.close();
});

function filled(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

test('tensors five times the memory limit keep their values through kernels and reads', () => {
  rt.limitBytes = rt.liveBytes + 8 * MiB;
  const n = (MiB / 4) | 0; // 1 MiB each
  const data: Float32Array[] = [];
  const xs: Storage[] = [];
  for (let i = 0; i < 40; i++) {
    data.push(filled(n, i));
    const s = cpu.alloc('f32', n);
    cpu.write(s, data[i]);
    xs.push(s);
  }
  // Allocated while the memory is full, the later ones are written where they are: outside.
  assert.ok(xs.filter((s) => (s as CpuStorage).ptr < 0).length >= 30, 'nothing waits outside with 40 MiB under 8 MiB');
  assert.ok(rt.liveBytes <= rt.limitBytes);
  // out_i = 2 x_i + 1 for every i, then x_i + out_i: each kernel reloads what it needs.
  const outs = xs.map((x) => {
    const o = cpu.alloc('f32', n);
    cpu.kernels.affine({ x, out: o, scale: 2, shift: 1, n });
    return o;
  });
  for (let i = 0; i < xs.length; i++)
    cpu.kernels.binary({ op: 'add', a: xs[i], b: outs[i], out: outs[i], shape: [n], aStrides: [1], bStrides: [1] });
  for (let i = 0; i < xs.length; i++) {
    const got = cpu.readSync(outs[i]) as Float32Array;
    for (let j = 0; j < n; j += 997) {
      const want = 3 * data[i][j] + 1;
      assert.ok(
        Math.abs(got[j] - want) <= 1e-6 * (1 + Math.abs(want)),
        `tensor ${i} element ${j}: ${got[j]} vs ${want}`,
      );
    }
    assert.deepEqual(cpu.readSync(xs[i]), data[i], `tensor ${i} changed`);
  }
  // A write into a spilled tensor lands where it lies.
  const spilled = xs.find((s) => (s as CpuStorage).ptr < 0)!;
  assert.ok(spilled !== undefined);
  cpu.write(spilled, [7, 8, 9], 5);
  assert.deepEqual(
    [...cpu.readSync(spilled, 4, 9)],
    [data[xs.indexOf(spilled)][4], 7, 8, 9, data[xs.indexOf(spilled)][8]],
  );
  const st = cpu.pager.stats;
  assert.ok(st.spills > 0 && st.reloads > 0 && st.movedBytes > 40 * MiB, JSON.stringify(st));
  for (const s of [...xs, ...outs]) cpu.free(s);
  assert.equal(st.spilledBytes, 0);
  rt.limitBytes = 2 ** 32;
});

test('a kernel whose operands alone exceed the limit fails naming the sizes', () => {
  rt.limitBytes = rt.liveBytes + 3 * MiB;
  const n = MiB / 4;
  const a = cpu.alloc('f32', n),
    b = cpu.alloc('f32', n),
    c = cpu.alloc('f32', n),
    d = cpu.alloc('f32', n);
  assert.throws(
    () =>
      cpu.kernels.where({ cond: a, a: b, b: c, out: d, shape: [n], condStrides: [1], aStrides: [1], bStrides: [1] }),
    new RegExp(
      String.raw`out of memory allocating 1048576 bytes \([\d.]+ MiB live in the WebAssembly memory, ` +
        String.raw`which holds at most [\d.]+ MiB, all of it needed by the running kernel\)`,
    ),
  );
  for (const s of [a, b, c, d]) cpu.free(s);
  rt.limitBytes = 2 ** 32;
});

test('DPO with the memory limited to a few MiB (in bytes, or in addresses) equals the unlimited run bit for bit', async () => {
  const backend = await cpuBackend({});
  await initEngine({ device: 'cpu' });
  const root = tempRoot();
  const model = await tinyModel(root);
  const data = tinyPreferences(root);
  const run = async (name: string, threads = 0) => {
    const cfg = {
      ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }),
      device: 'cpu',
      model_name_or_path: model,
      dataset: data,
      output_dir: join(root, name),
      learning_rate: 5e-3,
      max_steps: 4,
      per_device_train_batch_size: 4,
      logging_steps: 1,
      save_steps: 0,
      beta: 0.1,
      lr_scheduler_type: 'constant',
      threads,
    } as DpoConfig;
    await runDpo(cfg, { quiet: true, log: () => {} });
    return readMetrics(cfg.output_dir).filter((l) => 'loss' in l);
  };
  const free = await run('free');
  const same = (paged: Record<string, number>[]) => {
    assert.equal(paged.length, free.length);
    for (let i = 0; i < free.length; i++) {
      for (const [k, v] of Object.entries(free[i]))
        if (!/second|runtime/.test(k)) assert.equal(paged[i][k], v, `step ${i + 1} ${k}`);
    }
  };
  const st = backend.pager.stats;
  // Few bytes allowed live: the least recently used move out.
  let spills = st.spills;
  backend.rt.limitBytes = backend.rt.liveBytes + 3 * MiB;
  try {
    same(await run('paged'));
    assert.ok(st.spills > spills, 'the run limited in bytes moved nothing out');
  } finally {
    backend.rt.limitBytes = 2 ** 32;
  }
  // Few addresses (as at 4 GiB): compaction, then the cheapest runs of blocks. A fresh backend (one
  // thread: another engine key) so that no free block left by the runs above hides the limit.
  const fresh = await cpuBackend({ threads: 1 });
  assert.notEqual(fresh, backend);
  fresh.rt.addressLimit = fresh.rt.blocks().at(-1)![0] + 3.5 * MiB;
  try {
    same(await run('fragmented', 1));
    const fs = fresh.pager.stats;
    assert.ok(fs.spills > 0, JSON.stringify(fs));
  } finally {
    fresh.rt.addressLimit = 2 ** 32;
    await initEngine({ device: 'cpu' });
  }
});

/** A fresh runtime with 8 MiB of heap above the threads' scratch, filled with eight 1 MiB tensors holding 0..7. */
async function eightTensors(opts: CpuOptions = {}): Promise<{ rt: KernelRuntime; cpu: CpuBackend; xs: CpuStorage[] }> {
  const n = MiB / 4;
  const rt = await KernelRuntime.create({ threads: 1 });
  const cpu = new CpuBackend(rt, opts);
  rt.addressLimit = rt.blocks().at(-1)![0] + 8 * MiB;
  const xs = Array.from({ length: 8 }, (_, i) => {
    const s = cpu.alloc('f32', n);
    cpu.kernels.fill({ out: s, value: i });
    return s;
  });
  return { rt, cpu, xs };
}

function keptValues(cpu: CpuBackend, xs: CpuStorage[], ks: number[]): void {
  for (const k of ks) {
    const v = cpu.readSync(xs[k]);
    assert.ok(v[0] === k && v[v.length - 1] === k, `tensor ${k} lost its values when it moved`);
  }
}

test('when no hole is large enough and sliding tensors down copies less than moving any out, they slide', async () => {
  const { rt, cpu, xs } = await eightTensors();
  try {
    for (const k of [5, 7]) cpu.free(xs[k]); // 2 MiB free: x6 between the holes
    const big = cpu.alloc('f32', MiB / 2);
    assert.ok(big.ptr < 0 && big.blank, 'allocated while the memory is full, a large tensor waits blank');
    cpu.view(big); // a WebAssembly kernel needs it
    assert.equal(cpu.pager.stats.spills, 0, 'a tensor moved out although compaction (1 MiB moved) made room');
    assert.equal(cpu.pager.stats.compactions, 1);
    assert.equal(cpu.pager.stats.movedInside, MiB);
    keptValues(cpu, xs, [0, 1, 2, 3, 4, 6]);
    assert.ok(big.ptr >= 0);
  } finally {
    await rt.close();
  }
});

test('when sliding tensors down would copy more than moving the oldest out, it moves out instead', async () => {
  const { rt, cpu, xs } = await eightTensors();
  try {
    for (const k of [1, 7]) cpu.free(xs[k]); // 2 MiB free; sliding would move x2..x6 (5 MiB)
    const big = cpu.alloc('f32', MiB / 2);
    cpu.view(big);
    assert.equal(cpu.pager.stats.compactions, 0);
    assert.deepEqual(
      [0, 2, 3, 4, 5, 6].filter((k) => xs[k].ptr < 0),
      [0],
      'x0, the least recently used, beside the hole at x1, moves out',
    );
    keptValues(cpu, xs, [0, 2, 3, 4, 5, 6]);
    assert.ok(big.ptr >= 0);
  } finally {
    await rt.close();
  }
});

test("blocks that cannot move (pinned, the runtime's own) leave holes: the cheapest run moves out, not the oldest", async () => {
  const n = MiB / 4;
  const rt = await KernelRuntime.create({ threads: 1 });
  const cpu = new CpuBackend(rt, {});
  rt.addressLimit = rt.blocks().at(-1)![0] + 8 * MiB;
  try {
    // [x0][x1][F][x3][x4][F][x6][x7], F owned by the runtime; then holes at x1 and x4.
    const xs: (CpuStorage | null)[] = [];
    const fixed: number[] = [];
    for (let k = 0; k < 8; k++) {
      if (k === 2 || k === 5) {
        fixed.push(rt.malloc(MiB));
        xs.push(null);
      } else xs.push(cpu.alloc('f32', n));
    }
    cpu.free(xs[1]!);
    cpu.free(xs[4]!);
    cpu.readSync(xs[3]!); // x3 is the most recently used; x0 the oldest
    const big = cpu.alloc('f32', 2 * n);
    cpu.view(big);
    const moved = [0, 3, 6, 7].filter((k) => xs[k]!.ptr < 0);
    assert.deepEqual(moved, [0], `moved ${moved.join(', ')}`);
    assert.ok(big.ptr >= 0);
    for (const p of fixed) rt.free(p);
  } finally {
    await rt.close();
  }
});

test("native kernels take spilled operands where they lie: nothing comes back in, and the results are the WebAssembly kernels'", async (t) => {
  if ((await loadNative()) === null) return t.skip(nativeLoadError ?? 'native addon not loaded');
  const rng = new Rng(7);
  const data = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const [M, K, N, P, V, D, R] = [33, 70, 45, 1001, 50, 24, 19];
  const inputs = {
    a: data(M * K),
    b: data(K * N),
    c: data(M * N),
    p: data(P),
    g: data(P),
    m: data(P),
    v: Float32Array.from(data(P), Math.abs),
    table: data(V * D),
    dy: data(R * D),
    dtable: data(V * D),
    acc: data(70001),
    more: data(70001),
  };
  const ids = Int32Array.from({ length: R }, (_, i) => (i * 7) % V);
  /** Runs every kernel with a native implementation on one backend; returns its outputs and the sum of squares. */
  const runAll = (cpu: CpuBackend, spillFirst: boolean) => {
    const st: Record<string, Storage> = {};
    for (const [k, x] of Object.entries(inputs)) {
      st[k] = cpu.alloc('f32', x.length);
      cpu.write(st[k], x);
    }
    st.ids = cpu.alloc('i32', R);
    cpu.write(st.ids, ids);
    st.rows = cpu.alloc('f32', R * D);
    st.scaled = cpu.alloc('f32', P);
    if (spillFirst) {
      // Everything moves out: at the byte limit, an allocation moves the least recently used out.
      cpu.rt.limitBytes = cpu.rt.liveBytes;
      cpu.free(cpu.alloc('f32', 1));
      cpu.rt.limitBytes = 2 ** 32;
      for (const [k, s] of Object.entries(st)) assert.ok((s as CpuStorage).ptr < 0, `${k} did not move out`);
    }
    const out = cpu.alloc('f64', 1);
    cpu.kernels.fill({ out, value: 0 });
    const reloads = cpu.pager.stats.reloads;
    const k = cpu.kernels;
    k.matmul({
      a: st.a,
      b: st.b,
      c: st.c,
      M,
      N,
      K,
      transA: false,
      transB: false,
      accumulate: true,
      batch: 1,
      strideA: 0,
      strideB: 0,
      strideC: 0,
    });
    k.adamw({
      p: st.p,
      g: st.g,
      m: st.m,
      v: st.v,
      n: P,
      lr: 1e-3,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0.01,
      bc1: 0.1,
      bc2: 0.001,
    });
    k.sumSquares({ x: st.g, n: P, out, index: 0 });
    k.affine({ x: st.p, out: st.scaled, n: P, scale: 0.5, shift: -1 });
    k.embedding({ weight: st.table, ids: st.ids, out: st.rows, N: R, D, V });
    k.embeddingGrad({ dy: st.dy, ids: st.ids, dweight: st.dtable, N: R, D, V });
    // A gradient added into a leaf's (tied weights): a dense sum, large enough for the addon.
    k.binary({ op: 'add', a: st.acc, b: st.more, out: st.acc, shape: [70001], aStrides: [1], bStrides: [1] });
    if (spillFirst) {
      assert.equal(
        cpu.pager.stats.reloads,
        reloads,
        'an operand of a native kernel came back into the WebAssembly memory',
      );
      for (const [name, s] of Object.entries(st)) assert.ok((s as CpuStorage).ptr < 0, `${name} came back in`);
    }
    const result = Object.fromEntries(
      ['c', 'p', 'm', 'v', 'scaled', 'rows', 'dtable', 'acc'].map((n) => [n, cpu.readSync(st[n])]),
    );
    return { ...result, sumsq: cpu.readSync(out)[0] };
  };
  const wasmRt = await KernelRuntime.create({ threads: 2 });
  const nativeRt = await KernelRuntime.create({ threads: 2 });
  try {
    const expected = runAll(new CpuBackend(wasmRt, {}), false);
    const got = runAll(new CpuBackend(nativeRt, { native: true }), true);
    for (const [name, x] of Object.entries(expected)) assert.deepEqual(got[name as keyof typeof got], x, name);
  } finally {
    await wasmRt.close();
    await nativeRt.close();
  }
});

test('a large tensor allocated while the memory is full waits blank: written outside by a native kernel, given room by a WebAssembly one, copied by neither', async (t) => {
  if ((await loadNative()) === null) return t.skip(nativeLoadError ?? 'native addon not loaded');
  const { rt, cpu: nat, xs } = await eightTensors({ native: true }); // the 8 MiB are full
  try {
    const [M, K, N] = [64, 64, 64]; // C: 16 KiB, too small to wait blank
    const a = nat.alloc('f32', 4 * M * K); // 64 KiB
    assert.equal(a.blank, false);
    const st = nat.pager.stats;
    assert.ok(st.spills > 0, 'a small tensor takes room at once');
    const moved = st.movedBytes;
    const big = nat.alloc('f32', MiB / 2); // 2 MiB
    const spills = st.spills;
    assert.ok(big.blank && big.ptr < 0 && st.spills === spills);
    nat.kernels.fill({ out: a, value: 0.5 });
    nat.kernels.fill({ out: big, value: 1 });
    assert.ok(big.ptr < 0 && !big.blank && st.movedBytes === moved, 'fill wrote it outside');
    // C = A B with C blank: the native kernel writes it outside.
    const c = nat.alloc('f32', (MiB / 4) * 2);
    nat.kernels.matmul({
      a,
      b: big,
      c,
      M: 4 * M,
      N: 2048,
      K,
      transA: false,
      transB: false,
      accumulate: false,
      batch: 1,
      strideA: 0,
      strideB: 0,
      strideC: 0,
    });
    assert.ok(c.ptr < 0 && st.reloads === 0);
    assert.ok(
      (nat.readSync(c) as Float32Array).every((x) => x === 32),
      'A B = 0.5 x 1 x 64',
    );
    // A WebAssembly kernel's output allocated blank gets room without any copy in.
    const out = nat.alloc('f32', (MiB / 4) * 2);
    assert.ok(out.blank);
    const reloads = st.reloads;
    nat.kernels.unary({ op: 'neg', x: a, out: a, n: 4 * M * K }); // warm: a is resident
    nat.kernels.unary({ op: 'neg', x: c, out, n: (MiB / 4) * 2 });
    assert.equal(st.reloads, reloads + 1, 'only c, written before, was copied in');
    assert.ok((nat.readSync(out) as Float32Array).every((x) => x === -32));
    assert.ok(st.movedBytes - moved >= 2 * MiB, 'c came in');
    for (const s of [a, big, c, out, ...xs]) nat.free(s);
  } finally {
    await rt.close();
  }
});
