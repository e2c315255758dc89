// Every differentiable op's gradient against central finite differences in float64, at random
// shapes including odd sizes (1, 7, 33).
import { before, describe, test } from 'node:test';
import * as E from '../../src/core/index.js';
import { UNARY_DOMAINS, UNARY_OPS } from './op-cases.js';
import { Rng, type Tensor } from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { gradCheck, input, type Input } from './gradcheck.js';

before(async () => {
  await initEngine({ device: 'cpu', threads: 1 });
});

const rng = new Rng(42);
const SIZES = [1, 7, 33];
const pick = (xs: number[]): number => xs[rng.int(xs.length)];
const ints = (n: number, hi: number): Input => ({
  values: Float64Array.from({ length: n }, () => rng.int(hi)),
  shape: [n],
  int: true,
});

describe('unary ops', () => {
  for (const [name, f] of UNARY_OPS) {
    test(name, () => {
      const [lo, hi] = UNARY_DOMAINS[name] ?? [-3, 3];
      // Keep relu/abs away from their kink.
      const x = input(rng, [pick(SIZES), 3], lo, hi);
      if (name === 'relu' || name === 'abs')
        x.values.forEach((v, i) => {
          if (Math.abs(v) < 0.05) x.values[i] = 0.5;
        });
      gradCheck(name, ([a]) => f(a), [x]);
    });
  }
  test('large inputs stay finite (logSigmoid, softplus, sigmoid)', () => {
    gradCheck('logSigmoid far', ([a]) => E.logSigmoid(a), [
      { values: Float64Array.from([-40, -5, 0, 5, 40]), shape: [5] },
    ]);
  });
});

describe('binary ops with broadcasting', () => {
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
    [[33], [1]],
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
    for (const [sa, sb] of shapes) {
      test(`${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`, () =>
        gradCheck(name, ([a, b]) => f(a, b), [input(rng, sa, lo, hi), input(rng, sb, lo, hi)]));
    }
  }
  test('where', () => {
    const cond: Input = {
      values: Float64Array.from({ length: 21 }, () => (rng.next() < 0.5 ? 1 : 0)),
      shape: [7, 3],
      grad: false,
    };
    gradCheck('where', ([c, a, b]) => E.where(c, a, b), [cond, input(rng, [7, 3]), input(rng, [3])]);
  });
  test('maskedFill', () => {
    const mask: Input = {
      values: Float64Array.from({ length: 7 }, () => (rng.next() < 0.5 ? 1 : 0)),
      shape: [7, 1],
      grad: false,
    };
    gradCheck('maskedFill', ([a, m]) => E.maskedFill(a, m, -3), [input(rng, [7, 5]), mask]);
  });
});

describe('reductions', () => {
  test('sum over all / axes / keepdims', () => {
    gradCheck('sum all', ([a]) => E.sum(a), [input(rng, [7, 3])]);
    gradCheck('sum 0', ([a]) => E.sum(a, 0), [input(rng, [7, 3, 2])]);
    gradCheck('sum [0,2]', ([a]) => E.sum(a, [0, 2], true), [input(rng, [7, 3, 2])]);
    gradCheck('sum -1', ([a]) => E.sum(a, -1), [input(rng, [1, 33])]);
  });
  test('mean', () => gradCheck('mean', ([a]) => E.mean(a, [1, 2]), [input(rng, [3, 7, 2])]));
  test('max', () => gradCheck('max', ([a]) => E.max(a, 1), [input(rng, [7, 5])]));
});

describe('shape ops', () => {
  test('reshape / unsqueeze / squeeze', () =>
    gradCheck('reshape', ([a]) => E.squeeze(E.unsqueeze(E.reshape(a, [3, -1]), 0), 0), [input(rng, [7, 3])]));
  test('permute', () => gradCheck('permute', ([a]) => E.permute(a, [2, 0, 1]), [input(rng, [2, 7, 3])]));
  test('transpose', () => gradCheck('transpose', ([a]) => E.transpose(a), [input(rng, [7, 3])]));
  test('slice / narrow', () => {
    gradCheck('slice', ([a]) => E.slice(a, [1, 0, 1], [6, 3, -1]), [input(rng, [7, 3, 4])]);
    gradCheck('narrow', ([a]) => E.narrow(a, -1, 2, 5), [input(rng, [3, 7])]);
  });
  test('concat / stack', () => {
    gradCheck('concat', ([a, b]) => E.concat([a, b, a], 1), [input(rng, [2, 3, 2]), input(rng, [2, 1, 2])]);
    gradCheck('stack', ([a, b]) => E.stack([a, b], 1), [input(rng, [7, 3]), input(rng, [7, 3])]);
  });
  test('split (all pieces used, and one unused)', () => {
    gradCheck('split', ([a]) => E.concat(E.split(a, 1, [2, 3, 2]).reverse(), 1), [input(rng, [3, 7])]);
    gradCheck('split partial', ([a]) => E.split(a, 0, [1, 6])[1], [input(rng, [7, 2])]);
  });
  test('broadcastTo', () => gradCheck('broadcastTo', ([a]) => E.broadcastTo(a, [2, 7, 3]), [input(rng, [7, 1])]));
  test('copy', () => gradCheck('copy', ([a]) => E.copy(a), [input(rng, [7])]));
});

describe('matmul', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`2D transA=${transA} transB=${transB}`, () => {
        const M = pick(SIZES),
          K = pick([1, 7]),
          N = pick([1, 7, 9]);
        gradCheck('matmul', ([a, b]) => E.matmul(a, b, { transA, transB }), [
          input(rng, transA ? [K, M] : [M, K]),
          input(rng, transB ? [N, K] : [K, N]),
        ]);
      });
      test(`batched with broadcast transA=${transA} transB=${transB}`, () => {
        gradCheck('matmul batched', ([a, b]) => E.matmul(a, b, { transA, transB }), [
          input(rng, transA ? [2, 3, 5, 4] : [2, 3, 4, 5]),
          input(rng, transB ? [3, 6, 5] : [3, 5, 6]),
        ]);
        gradCheck('matmul b 2D', ([a, b]) => E.matmul(a, b, { transA, transB }), [
          input(rng, transA ? [3, 5, 4] : [3, 4, 5]),
          input(rng, transB ? [6, 5] : [5, 6]),
        ]);
        gradCheck('matmul a 2D', ([a, b]) => E.matmul(a, b, { transA, transB }), [
          input(rng, transA ? [5, 4] : [4, 5]),
          input(rng, transB ? [3, 6, 5] : [3, 5, 6]),
        ]);
      });
    }
  }
  test('linear with bias', () =>
    gradCheck('linear', ([x, w, b]) => E.linear(x, w, b), [
      input(rng, [2, 7, 5]),
      input(rng, [3, 5]),
      input(rng, [3]),
    ]));
  test('linear with a transposed ([in, out]) weight, with and without bias', () => {
    gradCheck('linear transposed', ([x, w, b]) => E.linear(x, w, b, { transposed: true }), [
      input(rng, [7, 5]),
      input(rng, [5, 3]),
      input(rng, [3]),
    ]);
    gradCheck('linear no bias', ([x, w]) => E.linear(x, w), [input(rng, [1, 33, 4]), input(rng, [7, 4])]);
  });
});

describe('fused nn ops', () => {
  test('softmax / logSoftmax', () => {
    gradCheck('softmax', ([a]) => E.softmax(a), [input(rng, [7, 5], -3, 3)]);
    gradCheck('logSoftmax', ([a]) => E.logSoftmax(a), [input(rng, [3, 33], -3, 3)]);
  });
  test('logSoftmaxGather with ignore_index', () => {
    const t = ints(7, 9);
    t.values[3] = -100;
    gradCheck('logSoftmaxGather', ([a, tg]) => E.logSoftmaxGather(a, tg), [input(rng, [7, 9], -3, 3), t]);
  });
  test('embedding (repeated ids accumulate)', () => {
    gradCheck('embedding', ([w, ids]) => E.embedding(w, ids), [input(rng, [5, 3]), { ...ints(7, 5), shape: [7] }]);
  });
  test('tied embedding (gather rows, then the same table as the output projection)', () => {
    gradCheck('tied embedding', ([w, ids]) => E.linear(E.embedding(w, ids), w), [
      input(rng, [5, 3]),
      { ...ints(7, 5), shape: [7] },
    ]);
  });
  test('layerNorm with and without affine', () => {
    gradCheck('layerNorm', ([x, w, b]) => E.layerNorm(x, w, b, 1e-5), [
      input(rng, [7, 6]),
      input(rng, [6]),
      input(rng, [6]),
    ]);
    gradCheck('layerNorm plain', ([x]) => E.layerNorm(x, null, null, 1e-5), [input(rng, [3, 33])]);
  });
  test('rmsNorm, Llama and Gemma (1 + w) forms', () => {
    gradCheck('rmsNorm', ([x, w]) => E.rmsNorm(x, w, 1e-6, 0), [input(rng, [7, 6]), input(rng, [6])]);
    gradCheck('rmsNorm gemma', ([x, w]) => E.rmsNorm(x, w, 1e-6, 1), [input(rng, [7, 6]), input(rng, [6])]);
  });
  test('rope (full and partial rotation)', () => {
    gradCheck('rope', ([x, c, s]) => E.rope(x, c, s), [
      input(rng, [2, 3, 2, 8]),
      { ...input(rng, [2, 3, 4]), grad: false },
      { ...input(rng, [2, 3, 4]), grad: false },
    ]);
    gradCheck('rope partial', ([x, c, s]) => E.rope(x, c, s), [
      input(rng, [1, 7, 1, 6]),
      { ...input(rng, [1, 7, 2]), grad: false },
      { ...input(rng, [1, 7, 2]), grad: false },
    ]);
  });
  const attn = (
    T: number,
    S: number,
    H: number,
    Hkv: number,
    Dh: number,
    opts: E.AttentionOptions,
    withMask: boolean,
  ): void => {
    const mask: Input = {
      values: Float64Array.from({ length: 2 * S }, (_, i) => (i % S === 0 || rng.next() < 0.8 ? 1 : 0)),
      shape: [2, S],
      grad: false,
    };
    const inputs = [input(rng, [2, T, H, Dh]), input(rng, [2, S, Hkv, Dh]), input(rng, [2, S, Hkv, Dh]), mask];
    gradCheck(
      `attention ${JSON.stringify(opts)}`,
      ([q, k, v, m]) => E.attention(q, k, v, { ...opts, mask: withMask ? m : null }),
      inputs,
    );
  };
  test('attention causal GQA', () => attn(7, 7, 4, 2, 3, { causal: true }, false));
  test('attention padding mask, window, softcap', () =>
    attn(5, 5, 2, 1, 4, { causal: true, window: 2, softcap: 2 }, true));
  test('attention with a KV cache (T < S) and non-causal', () => {
    attn(2, 6, 2, 2, 3, { causal: true }, true);
    attn(3, 4, 2, 1, 3, { causal: false }, true);
  });
  test('dropout (fixed seed)', () => gradCheck('dropout', ([x]) => E.dropout(x, 0.3, 1234), [input(rng, [7, 33])]));
});
