// Every op on the WebGPU backend against the CPU backend, float32 on both: outputs and the
// gradients backward gives every input. Sizes cross the kernels' tile and workgroup edges
// (matmul tiles of 64 x 64 x 16, 256-thread rows, 64-row attention blocks with 32-key tiles,
// chunked reductions).
import { describe, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { UNARY_DOMAINS, UNARY_OPS } from '../core/op-cases.js';
import type { Tensor } from '../../src/core/index.js';
import { compareOp, fixed, inp, ints, type In } from './compare.js';
import { GPU } from './gpu.js';

const skip = GPU.skip;

describe('webgpu: unary ops', { skip }, () => {
  for (const [name, f] of UNARY_OPS) {
    test(name, async () => {
      const [lo, hi] = UNARY_DOMAINS[name] ?? [-6, 6];
      await compareOp(name, ([a]) => f(a), [inp([33, 9], lo, hi)]);
    });
  }
  test('tails stay finite and accurate (exp, tanh, sigmoid, logSigmoid, softplus, gelu)', async () => {
    const x = fixed([-120, -90, -40, -20, -5, -1e-3, 0, 1e-6, 3, 20, 40, 88], [12]);
    x.grad = true;
    for (const [name, f] of [
      ['exp', E.exp],
      ['tanh', E.tanh],
      ['sigmoid', E.sigmoid],
      ['logSigmoid', E.logSigmoid],
      ['softplus', E.softplus],
      ['gelu', E.gelu],
      ['silu', E.silu],
    ] as const) {
      await compareOp(`${name} tails`, ([a]) => f(a), [x]);
    }
  });
});

describe('webgpu: binary ops with broadcasting', { skip }, () => {
  const shapes: [number[], number[]][] = [
    [
      [7, 3],
      [7, 3],
    ],
    [[7, 3], [3]],
    [
      [1, 3],
      [7, 1],
    ],
    [
      [2, 1, 5],
      [3, 1],
    ],
    [[300], [1]],
  ];
  const ops: [string, (a: Tensor, b: Tensor) => Tensor, [number, number]][] = [
    ['add', E.add, [-2, 2]],
    ['sub', E.sub, [-2, 2]],
    ['mul', E.mul, [-2, 2]],
    ['div', E.div, [0.5, 2]],
    ['maximum', E.maximum, [-2, 2]],
    ['minimum', E.minimum, [-2, 2]],
    ['pow', E.pow, [0.5, 2]],
  ];
  for (const [name, f, [lo, hi]] of ops) {
    test(name, async () => {
      for (const [sa, sb] of shapes)
        await compareOp(`${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, ([a, b]) => f(a, b), [
          inp(sa, lo, hi),
          inp(sb, lo, hi),
        ]);
    });
  }
  test('pow with negative bases and integer exponents', async () => {
    await compareOp(
      'pow',
      ([a, b]) => E.pow(a, b),
      [fixed([-2, -1.5, 0, 3, -2, 0], [6]), fixed([3, 2, 2, 0.5, 0, -1], [6])],
      { backward: false },
    );
  });
  test('comparisons gt, ge, eq', async () => {
    const a = fixed([1, 2, 3, 4, 2], [5]),
      b = fixed([2, 2, 2, 2, 2], [5]);
    for (const f of [E.gt, E.ge, E.eq]) await compareOp('compare', ([x, y]) => f(x, y), [a, b]);
  });
  test('where / maskedFill', async () => {
    const cond = fixed(
      Array.from({ length: 21 }, (_, i) => (i % 3 === 0 ? 1 : 0)),
      [7, 3],
    );
    await compareOp('where', ([c, a, b]) => E.where(c, a, b), [cond, inp([7, 3]), inp([3])]);
    await compareOp('maskedFill', ([a, m]) => E.maskedFill(a, m, -3), [
      inp([7, 5]),
      fixed([1, 0, 0, 1, 0, 1, 1], [7, 1]),
    ]);
  });
});

describe('webgpu: reductions', { skip }, () => {
  test('sum over all / axes / keepdims', async () => {
    await compareOp('sum all', ([a]) => E.sum(a), [inp([7, 3])]);
    await compareOp('sum 0', ([a]) => E.sum(a, 0), [inp([7, 3, 2])]);
    await compareOp('sum [0,2]', ([a]) => E.sum(a, [0, 2], true), [inp([7, 3, 2])]);
    await compareOp('sum -1', ([a]) => E.sum(a, -1), [inp([1, 33])]);
  });
  test('long axes (chunked in two passes)', async () => {
    await compareOp('sum rows 9000', ([a]) => E.sum(a, -1), [inp([3, 9000])], { tol: 2e-5 });
    await compareOp('sum columns 700', ([a]) => E.sum(a, 0), [inp([700, 37])], { tol: 2e-5 });
    await compareOp('max rows 9000', ([a]) => E.max(a, -1), [inp([2, 9000])]);
    await compareOp('max columns 700', ([a]) => E.max(a, 0), [inp([700, 5])]);
  });
  test('mean, max', async () => {
    await compareOp('mean', ([a]) => E.mean(a, [1, 2]), [inp([3, 7, 2])]);
    await compareOp('max', ([a]) => E.max(a, 1), [inp([7, 5])]);
  });
});

describe('webgpu: shape ops', { skip }, () => {
  test('reshape, permute, transpose, slice, narrow', async () => {
    await compareOp('reshape', ([a]) => E.squeeze(E.unsqueeze(E.reshape(a, [3, -1]), 0), 0), [inp([7, 3])]);
    await compareOp('permute', ([a]) => E.permute(a, [2, 0, 1]), [inp([2, 7, 3])]);
    await compareOp('permute 4d', ([a]) => E.permute(a, [0, 2, 1, 3]), [inp([2, 5, 3, 4])]);
    await compareOp('transpose', ([a]) => E.transpose(a), [inp([7, 3])]);
    await compareOp('slice', ([a]) => E.slice(a, [1, 0, 1], [6, 3, -1]), [inp([7, 3, 4])]);
    await compareOp('narrow', ([a]) => E.narrow(a, -1, 2, 5), [inp([3, 7])]);
  });
  test('concat, stack, broadcastTo, copy', async () => {
    await compareOp('concat', ([a, b]) => E.concat([a, b, a], 1), [inp([2, 3, 2]), inp([2, 1, 2])]);
    await compareOp('stack', ([a, b]) => E.stack([a, b], 1), [inp([7, 3]), inp([7, 3])]);
    await compareOp('broadcastTo', ([a]) => E.broadcastTo(a, [2, 7, 3]), [inp([7, 1])]);
    await compareOp('copy', ([a]) => E.copy(a), [inp([7])]);
  });
  test('int32 slices keep their values (targets made by narrow)', async () => {
    await compareOp('narrow i32', ([a]) => E.cast(E.narrow(a, 1, 1, 4), 'f32'), [ints([3, 6], 50)], {
      backward: false,
    });
  });
});

describe('webgpu: matmul', { skip }, () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`transA=${transA} transB=${transB}: 2D across tile edges, batched with broadcast`, async () => {
        const opts = { transA, transB };
        // Unaligned and vec4-aligned rows; the last two split K into chunks.
        for (const [M, K, N] of [
          [1, 1, 1],
          [7, 5, 9],
          [70, 33, 67],
          [130, 17, 65],
          [128, 64, 96],
          [64, 2100, 48],
          [36, 2101, 20],
        ]) {
          await compareOp(
            `matmul ${M}x${K}x${N}`,
            ([a, b]) => E.matmul(a, b, opts),
            [inp(transA ? [K, M] : [M, K]), inp(transB ? [N, K] : [K, N])],
            { tol: 2e-5 },
          );
        }
        await compareOp('matmul batched', ([a, b]) => E.matmul(a, b, opts), [
          inp(transA ? [2, 3, 5, 4] : [2, 3, 4, 5]),
          inp(transB ? [3, 6, 5] : [3, 5, 6]),
        ]);
        await compareOp('matmul a 2D', ([a, b]) => E.matmul(a, b, opts), [
          inp(transA ? [5, 4] : [4, 5]),
          inp(transB ? [3, 6, 5] : [3, 5, 6]),
        ]);
      });
    }
  }
  test('linear with bias (K = 200)', async () => {
    await compareOp('linear', ([x, w, b]) => E.linear(x, w, b), [inp([2, 37, 200]), inp([70, 200]), inp([70])], {
      tol: 2e-5,
    });
  });
});

describe('webgpu: fused nn ops', { skip }, () => {
  test('softmax / logSoftmax', async () => {
    await compareOp('softmax', ([a]) => E.softmax(a), [inp([7, 5], -3, 3)]);
    await compareOp('logSoftmax', ([a]) => E.logSoftmax(a), [inp([3, 700], -3, 3)]);
  });
  test('logSoftmaxGather with ignore_index, V = 1000', async () => {
    const t = ints([9], 1000);
    (t.values as Int32Array)[3] = -100;
    await compareOp('logSoftmaxGather', ([a, tg]) => E.logSoftmaxGather(a, tg), [inp([9, 1000], -5, 5), t]);
  });
  test('embedding: repeated ids accumulate; ids from the host and made on the device', async () => {
    await compareOp('embedding', ([w, ids]) => E.embedding(w, ids), [inp([50, 13]), ints([40], 50)]);
    await compareOp('embedding device ids', ([w, idsF]) => E.embedding(w, E.cast(idsF, 'i32')), [
      inp([50, 13]),
      fixed(
        Array.from({ length: 40 }, (_, i) => (i * 7) % 50),
        [40],
      ),
    ]);
  });
  test('layerNorm with and without affine (D = 300 > 256 threads)', async () => {
    await compareOp('layerNorm', ([x, w, b]) => E.layerNorm(x, w, b, 1e-5), [inp([7, 6]), inp([6]), inp([6])]);
    await compareOp(
      'layerNorm wide',
      ([x, w, b]) => E.layerNorm(x, w, b, 1e-5),
      [inp([130, 300]), inp([300]), inp([300])],
      { tol: 2e-5 },
    );
    await compareOp('layerNorm plain', ([x]) => E.layerNorm(x, null, null, 1e-5), [inp([3, 33])]);
  });
  test('rmsNorm, Llama and Gemma (1 + w) forms, and without a weight', async () => {
    await compareOp('rmsNorm', ([x, w]) => E.rmsNorm(x, w, 1e-6, 0), [inp([130, 300]), inp([300])], { tol: 2e-5 });
    await compareOp('rmsNorm gemma', ([x, w]) => E.rmsNorm(x, w, 1e-6, 1), [inp([7, 6]), inp([6])]);
    await compareOp('rmsNorm no weight', ([x]) => E.rmsNorm(x, null, 1e-6, 0), [inp([7, 6])]);
  });
  test('rope (full and partial rotation)', async () => {
    const cs = (shape: number[]): In => ({ ...inp(shape), grad: false });
    await compareOp('rope', ([x, c, s]) => E.rope(x, c, s), [inp([2, 3, 2, 8]), cs([2, 3, 4]), cs([2, 3, 4])]);
    await compareOp('rope partial', ([x, c, s]) => E.rope(x, c, s), [inp([1, 7, 1, 6]), cs([1, 7, 2]), cs([1, 7, 2])]);
  });
  test('dropout (fixed seed: the same mask as the CPU)', async () => {
    await compareOp('dropout', ([x]) => E.dropout(x, 0.3, 1234), [inp([7, 33])]);
  });
});

describe('webgpu: attention', { skip }, () => {
  const attn = async (
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    Dh: number,
    opts: E.AttentionOptions,
    withMask: boolean,
  ): Promise<void> => {
    const mask = fixed(
      Array.from({ length: B * S }, (_, i) => (i % S === 0 || (i * 7) % 5 !== 0 ? 1 : 0)),
      [B, S],
    );
    await compareOp(
      `attention B${B} T${T} S${S} H${H}/${Hkv} Dh${Dh} ${JSON.stringify(opts)}${withMask ? ' masked' : ''}`,
      ([q, k, v, m]) => E.attention(q, k, v, { ...opts, mask: withMask ? m : null }),
      [inp([B, T, H, Dh]), inp([B, S, Hkv, Dh]), inp([B, S, Hkv, Dh]), mask],
      { tol: 2e-5, gradTol: 5e-5 },
    );
  };
  test('causal, grouped-query heads', () => attn(2, 7, 7, 4, 2, 3, { causal: true }, false));
  test('padding mask, sliding window, softcap', () =>
    attn(2, 5, 5, 2, 1, 4, { causal: true, window: 2, softcap: 2 }, true));
  test('KV cache (T < S) and non-causal', async () => {
    await attn(2, 2, 6, 2, 2, 3, { causal: true }, true);
    await attn(2, 3, 4, 2, 1, 3, { causal: false }, true);
  });
  test('several query blocks and key tiles (T = S = 150, Dh = 16, window 40)', async () => {
    await attn(1, 150, 150, 4, 2, 16, { causal: true }, true);
    await attn(1, 150, 150, 2, 1, 16, { causal: true, window: 40 }, false);
  });
  test('head size 64 with a long cache (T = 70, S = 100)', () =>
    attn(1, 70, 100, 2, 1, 64, { causal: true, scale: 0.1 }, true));
});
