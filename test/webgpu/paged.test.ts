// Tensors above the WebGPU binding limit (maxStorageBufferBindingSize), split by rows, and bfloat16
// frozen weights (src/backend/webgpu/paged.ts). A second device is opened with the limit forced
// down to 60,000 bytes, so that the fixtures' 512 x 64 embedding (131,072 bytes) splits into 3
// pages (234, 234 and 44 rows); kernels and a LoRA DPO gradient on it must equal the unsplit
// device's, and with bf16 frozen weights the CPU backend's (itself checked against transformers
// in test/models/frozen-bf16.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebGpuBackend } from '../../src/backend/webgpu/index.js';
import type { GpuStorage } from '../../src/backend/webgpu/storage.js';
import type { Backend } from '../../src/core/backend.js';
import * as E from '../../src/core/index.js';
import { loadModel } from '../../src/models/load.js';
import { newAdapter } from '../../src/models/lora.js';
import { batchSigmoidLoss } from '../../src/train/dpo.js';
import { sequenceLogps } from '../../src/train/logps.js';
import { assertClose, randn, rng } from '../kernels/helpers.js';
import { FIXTURES, fixture } from '../models/fixtures.js';
import { batchOf } from '../models/parity-suite.js';
import { GPU, gpu } from './gpu.js';
import { bf16ToF32, f32ToBf16 } from '../../src/io/half.js';
import { CpuBackend } from '../../src/backend/cpu/backend.js';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';

const LIMIT = 60000;

describe('webgpu: tensors split across bindings', { skip: GPU.skip }, () => {
  let small: WebGpuBackend;
  before(async () => {
    small = await WebGpuBackend.create({ allowFallback: true, maxBinding: LIMIT });
  });
  after(() => {
    small?.destroy();
  });

  const rand = (n: number, seed: number): Float32Array => Float32Array.from(randn(rng(seed), n));

  test('write / read, fill, matmul with a split B (x W^T, dy W, accumulate) and embedding equal the unsplit device', async () => {
    const [V, D, M] = [300, 64, 7]; // W: 76,800 bytes, 2 pages
    const w = rand(V * D, 1),
      x = rand(M * D, 2),
      dy = rand(M * V, 3),
      c0 = rand(M * V, 4);
    const ids = Int32Array.from([0, 299, 233, 234, 5, 117, 234]);
    const results = async (be: Backend): Promise<Float32Array[]> => {
      const W = E.tensor(w, [V, D], 'f32', be);
      if (be === small) assert.equal((W.storage as GpuStorage).pages?.buffers.length, 2, 'W is split');
      const X = E.tensor(x, [M, D], 'f32', be),
        DY = E.tensor(dy, [M, V], 'f32', be),
        C = E.tensor(c0, [M, V], 'f32', be);
      const y = E.matmul(X, W, { transB: true }); // (M, V)
      const dx = E.matmul(DY, W); // (M, D)
      be.kernels.matmul({
        a: X.storage,
        b: W.storage,
        c: C.storage,
        M,
        N: V,
        K: D,
        transA: false,
        transB: true,
        accumulate: true,
        batch: 1,
        strideA: 0,
        strideB: 0,
        strideC: M * V,
      });
      const emb = E.embedding(W, E.tensor(ids, [M], 'i32', be));
      const out = [
        await W.toArray(),
        await y.toArray(),
        await dx.toArray(),
        await C.toArray(),
        await emb.toArray(),
      ] as Float32Array[];
      be.kernels.fill({ out: W.storage, value: 2 });
      out.push(Float32Array.from((await W.toArray()).slice(V * D - 3)));
      for (const t of [W, X, DY, C, y, dx, emb]) t.dispose();
      return out;
    };
    const want = await results(gpu()),
      got = await results(small);
    const names = ['W read back', 'x W^T', 'dy W', 'C += x W^T', 'embedding', 'fill'];
    assert.deepEqual(Array.from(got[0]), Array.from(w), 'W read back');
    // dy W sums its 300 products in two parts (one per page of K): float32 noise of a sum of magnitude ~20.
    for (let i = 1; i < names.length; i++)
      assertClose(got[i], want[i], names[i], i === 2 ? 1e-5 : 1e-6, i === 2 ? 1e-5 : 1e-6);
  });

  test('what cannot be split names the kernel and the limit', () => {
    const W = E.tensor(rand(300 * 64, 5), [300, 64], 'f32', small);
    // A reduction over a split tensor has no split version (full fine-tuning never needs one).
    assert.throws(
      () => E.sum(W, 1),
      /webgpu reduce: .*maxStorageBufferBindingSize, 60000 bytes.*reduce does not take split/,
    );
    // A split A (activations above the limit) is refused by matmul.
    assert.throws(
      () => E.matmul(W, E.tensor(rand(64 * 2, 6), [64, 2], 'f32', small)),
      /webgpu matmul: A \[300, 64\] is split \(above maxStorageBufferBindingSize, 60000 bytes here\)/,
    );
    assert.throws(
      () => E.zeros([20000], 'f32', small),
      /maxStorageBufferBindingSize of 60000 bytes.*only float32 \(and bfloat16\) tensors of 2 or more dims/,
    );
    assert.throws(() => E.zeros([2, 16000], 'f32', small), /one row of 64000 bytes is too/);
    // Tensors it writes split differently (same size, pages of 14,976 and 14,720 elements) cannot be
    // paired page by page (a read split differently is copied out a page at a time instead).
    const X = E.zeros([30, 640], 'f32', small);
    assert.throws(
      () =>
        small.kernels.sgd({
          p: W.storage,
          g: W.storage,
          buf: X.storage,
          n: W.size,
          lr: 1,
          momentum: 0.9,
          weightDecay: 0,
        }),
      /webgpu sgd: the tensors it writes are split differently \(pages of 14720 and 14976 elements\)/,
    );
    W.dispose();
    X.dispose();
  });

  test('full fine-tuning kernels on split weights, gradients and optimizer state equal the unsplit device', async () => {
    // W [300, 64] (2 pages: 234 and 66 rows), its transpose-shaped Conv1D twin [64, 300] (2 pages:
    // 50 and 14 rows), and a wide [20, 1000] C and B (2 pages each) for a product whose B and C are
    // both split.
    const [V, D, T] = [300, 64, 7];
    const w = rand(V * D, 21),
      x = rand(T * D, 22),
      dy = rand(T * V, 23),
      g0 = rand(V * D, 24),
      bias = rand(D, 25),
      a20 = rand(20 * 20, 26),
      b20 = rand(20 * 1000, 27),
      c20 = rand(20 * 1000, 28);
    const ids = Int32Array.from([0, 299, 233, 234, 5, 234, 0]);
    const results = async (be: Backend): Promise<[string, Float32Array][]> => {
      const k = be.kernels;
      const t = (v: Float32Array, shape: number[]): E.Tensor => E.tensor(v, shape, 'f32', be);
      const W = t(w, [V, D]),
        X = t(x, [T, D]),
        DY = t(dy, [T, V]);
      const out: [string, Float32Array][] = [];
      const get = async (what: string, s: E.Tensor): Promise<void> => {
        out.push([what, (await s.toArray()) as Float32Array]);
      };
      const mm = (
        a: E.Tensor,
        b: E.Tensor,
        c: E.Tensor,
        M: number,
        N: number,
        K: number,
        transA: boolean,
        transB: boolean,
        accumulate: boolean,
      ): void =>
        k.matmul({
          a: a.storage,
          b: b.storage,
          c: c.storage,
          M,
          N,
          K,
          transA,
          transB,
          accumulate,
          batch: 1,
          strideA: 0,
          strideB: 0,
          strideC: M * N,
        });
      // dW = dy^T x into a split C (nn.Linear), then accumulated again; and C = A B (A not transposed).
      const dW = t(g0, [V, D]);
      if (be === small) assert.equal((dW.storage as GpuStorage).pages?.buffers.length, 2, 'dW is split');
      mm(DY, X, dW, V, D, T, true, false, false);
      await get('dW = dy^T x', dW);
      mm(DY, X, dW, V, D, T, true, false, true);
      await get('dW += dy^T x', dW);
      const A = t(rand(V * T, 29), [V, T]);
      mm(A, X, dW, V, D, T, false, false, true);
      await get('dW += A x', dW);
      // GPT-2's Conv1D: dW [D, V] = x^T dy.
      const dWt = E.zeros([D, V], 'f32', be);
      if (be === small) assert.equal((dWt.storage as GpuStorage).pages?.buffers.length, 2, 'dW^T is split');
      mm(X, DY, dWt, D, V, T, true, false, false);
      await get('dW^T = x^T dy', dWt);
      // Split B and split C together, B as is and transposed.
      const A20 = t(a20, [20, 20]),
        B20 = t(b20, [20, 1000]),
        C20 = t(c20, [20, 1000]);
      mm(A20, B20, C20, 20, 1000, 20, false, false, true);
      await get('C += A B (B, C split)', C20);
      const BT = t(b20, [1000, 20]);
      mm(A20, BT, C20, 20, 1000, 20, true, true, false);
      await get('C = A^T B^T (B, C split)', C20);
      // The embedding gradient into a split table, onto an existing gradient (a tied head's): host
      // ids, and ids made on the device.
      const G = t(g0, [V, D]);
      const I = E.tensor(ids, [T], 'i32', be);
      k.embeddingGrad({ dy: X.storage, ids: I.storage, dweight: G.storage, N: T, D, V });
      await get('embeddingGrad (host ids)', G);
      const devIds = E.cast(E.tensor(Float32Array.from(ids), [T], 'f32', be), 'i32');
      k.embeddingGrad({ dy: X.storage, ids: devIds.storage, dweight: G.storage, N: T, D, V });
      await get('embeddingGrad (device ids)', G);
      // Elementwise on weights: in-place accumulation, clipping, a bias row and a scalar broadcast, unary.
      const W2 = E.copy(W);
      await get('copy', W2);
      E.addInto(W2, G);
      await get('addInto', W2);
      k.affine({ x: W2.storage, out: W2.storage, n: W2.size, scale: 0.5, shift: 0.25 });
      await get('affine in place', W2);
      await get('+ bias row', E.add(W, t(bias, [D])));
      await get('* scalar', E.mul(W, t(Float32Array.of(3), [1])));
      await get('tanh', E.tanh(W));
      const R = E.zeros([30, 640], 'f32', be); // split otherwise than W: 23 rows of 640 a page
      k.unary({ op: 'neg', x: W.storage, out: R.storage, n: W.size });
      await get('unary out of a differently split tensor', R);
      // A strided copy (a column block) and a row range across the page boundary, out of and into split tensors.
      const cols = E.zeros([V, 8], 'f32', be);
      k.copy({
        src: W.storage,
        dst: cols.storage,
        shape: [V, 8],
        srcStrides: [D, 1],
        dstStrides: [8, 1],
        srcOffset: 3,
        dstOffset: 0,
      });
      await get('copy of columns 3..11', cols);
      const rows = E.zeros([40, D], 'f32', be);
      k.copy({
        src: W.storage,
        dst: rows.storage,
        shape: [40 * D],
        srcStrides: [1],
        dstStrides: [1],
        srcOffset: 214 * D,
        dstOffset: 0,
      });
      await get('copy of rows 214..254', rows);
      const W3 = E.copy(W);
      k.copy({
        src: rows.storage,
        dst: W3.storage,
        shape: [40, D],
        srcStrides: [D, 1],
        dstStrides: [D, 1],
        srcOffset: 0,
        dstOffset: 10 * D,
      });
      await get('copy into rows 10..50', W3);
      // Optimizers and the gradient norm.
      const [P, M1, V1, S1] = [
        E.copy(W),
        E.zeros([V, D], 'f32', be),
        E.zeros([V, D], 'f32', be),
        E.zeros([V, D], 'f32', be),
      ];
      for (let step = 1; step <= 2; step++)
        k.adamw({
          p: P.storage,
          g: G.storage,
          m: M1.storage,
          v: V1.storage,
          n: P.size,
          lr: 1e-2,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0.01,
          bc1: 1 - 0.9 ** step,
          bc2: 1 - 0.999 ** step,
        });
      for (const [what, s] of [
        ['adamw p', P],
        ['adamw m', M1],
        ['adamw v', V1],
      ] as const)
        await get(what, s);
      k.rmsprop({
        p: P.storage,
        g: G.storage,
        sq: S1.storage,
        n: P.size,
        lr: 1e-2,
        alpha: 0.99,
        eps: 1e-8,
        weightDecay: 0.01,
      });
      await get('rmsprop p', P);
      await get('rmsprop sq', S1);
      k.sgd({ p: P.storage, g: G.storage, buf: M1.storage, n: P.size, lr: 1e-2, momentum: 0.9, weightDecay: 0.01 });
      await get('sgd p', P);
      await get('sgd buf', M1);
      const acc = E.zeros([2], 'f32', be);
      k.sumSquares({ x: G.storage, n: G.size, out: acc.storage, index: 1 });
      await get('sumSquares', acc);
      return out;
    };
    const want = await results(gpu()),
      got = await results(small);
    // Products and sums split into parts add in another order: float32 noise on values of ~1-100.
    for (let i = 0; i < want.length; i++) assertClose(got[i][1], want[i][1], got[i][0], 1e-5, 1e-5);
  });

  test('bf16 weights: write / read (odd sizes), matmul (x W^T, dy W) and embedding equal f32 on the widened values, split or not', async () => {
    const [V, D, M] = [301, 64, 5]; // bf16 W: 38,528 bytes (one binding); the f32 one 2 pages
    const bits = f32ToBf16(rand(V * D, 11)),
      w = bf16ToF32(bits),
      x = rand(M * D, 12),
      dy = rand(M * V, 13);
    const ids = Int32Array.from([0, 300, 150, 7, 299]);
    const results = async (be: Backend, dtype: 'f32' | 'bf16', shape: number[] = [V, D]): Promise<Float32Array[]> => {
      const W = E.tensor(dtype === 'bf16' ? bits : w, shape, dtype, be);
      const X = E.tensor(x, [M, D], 'f32', be),
        DY = E.tensor(dy, [M, V], 'f32', be);
      const out = [
        await W.toArray(),
        await E.matmul(X, W, { transB: true }).toArray(),
        await E.matmul(DY, W).toArray(),
        await E.embedding(W, E.tensor(ids, [M], 'i32', be)).toArray(),
        await W.backend.read(W.storage, 3, 8),
      ] as Float32Array[];
      W.dispose();
      return out;
    };
    const want = await results(gpu(), 'f32');
    for (const [label, got] of [
      ['bf16', await results(gpu(), 'bf16')],
      ['bf16, small binding', await results(small, 'bf16')],
    ] as const) {
      assert.deepEqual(Array.from(got[0]), Array.from(w), `${label}: read back`);
      assert.deepEqual(Array.from(got[4]), Array.from(w.subarray(3, 8)), `${label}: read of [3, 8)`);
      for (const [i, what] of [
        [1, 'x W^T'],
        [2, 'dy W'],
        [3, 'embedding'],
      ] as const)
        assertClose(got[i], want[i], `${label}: ${what}`, 1e-5, 1e-5);
    }
    // A bf16 table above the limit is split too (pages of 468 rows: an even number of elements).
    const bigBits = f32ToBf16(rand(1000 * 64, 14)),
      wide = bf16ToF32(bigBits);
    const big = E.tensor(bigBits, [1000, 64], 'bf16', small);
    assert.equal((big.storage as GpuStorage).pages?.buffers.length, 3);
    const bigIds = Int32Array.from([0, 999, 467, 468, 935, 936]);
    const gathered = await E.embedding(big, E.tensor(bigIds, [6], 'i32', small)).toArray();
    assert.deepEqual(
      Array.from(gathered),
      Array.from(bigIds).flatMap((id) => Array.from(wide.subarray(id * 64, id * 64 + 64))),
    );
    assert.throws(() => E.neg(big), /bfloat16/);
    big.dispose();
  });

  for (const frozen of ['f32', 'bf16'] as const) {
    test(`LoRA DPO on a model whose embedding and tied LM head are split (${frozen} base): log-probs and adapter gradients equal the unsplit device${frozen === 'bf16' ? ' and the CPU' : ''}`, async () => {
      const batch = batchOf(fixture('qwen2'));
      const run = async (be: Backend): Promise<Float32Array[]> => {
        E.setBackend(be);
        const model = loadModel(`${FIXTURES}qwen2/policy`, { backend: be, frozenDtype: frozen });
        const embed = [...model.params.values()].find((t) => t.shape[0] === 512)!;
        if (be === small)
          assert.equal(
            (embed.storage as GpuStorage).pages?.buffers.length,
            frozen === 'f32' ? 3 : 2,
            'the embedding is split',
          );
        const info = newAdapter(model, { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], seed: 1 });
        // B = 0 at init would make the policy equal the reference: move it off.
        for (const p of info.params)
          if (p.name.endsWith('lora_B'))
            be.write(
              p.tensor.storage,
              rand(p.tensor.size, 9).map((v) => 0.02 * v),
            );
        const out: Float32Array[] = [
          (await E.tidy(() => E.noGrad(() => sequenceLogps(model, batch).seq)).toArray()) as Float32Array,
        ];
        const ref = loadModel(`${FIXTURES}qwen2/reference`, { backend: be, frozenDtype: frozen });
        E.tidy(() => E.backward(batchSigmoidLoss(model, ref, batch)));
        for (const p of info.params) out.push((await p.tensor.grad!.toArray()) as Float32Array);
        for (const t of [...model.params.values(), ...ref.params.values(), ...info.params.map((p) => p.tensor)])
          t.dispose();
        return out;
      };
      const want = await run(gpu()),
        got = await run(small);
      const others: [string, Float32Array[]][] = [['small binding', got]];
      if (frozen === 'bf16') {
        const rt = await KernelRuntime.create({ threads: 2 });
        others.push(['cpu', await run(new CpuBackend(rt))]);
        await rt.close();
      }
      E.setBackend(gpu());
      for (const [label, o] of others) {
        assertClose(o[0], want[0], `${label}: sequence log-probs`, 1e-5, 1e-5);
        for (let i = 1; i < want.length; i++) assertClose(o[i], want[i], `${label}: adapter gradient ${i}`, 1e-4, 1e-6);
      }
    });
  }
});
