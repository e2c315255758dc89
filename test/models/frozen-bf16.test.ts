// Frozen weights kept in bfloat16 (frozen_dtype bfloat16): the matmul and embedding kernels with a
// bf16 operand on every CPU path (reference, WebAssembly, native addon), and parity with
// transformers for the reference model and a LoRA base whose matrices are bf16. The truth is
// test/fixtures/hf-tiny/*/expected-frozen-bf16.safetensors (gen_frozen_bf16.py: transformers in
// float32 on the same bf16-rounded weights, so 1e-4 applies), and transformers' own bfloat16
// arithmetic (expected-bf16.safetensors) at bfloat16 tolerance.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CpuBackend } from '../../src/backend/cpu/backend.js';
import { loadNative } from '../../src/backend/cpu/native.js';
import { KernelRuntime } from '../../src/backend/cpu/runtime.js';
import type { Backend } from '../../src/core/backend.js';
import * as E from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { bf16ToF32, f32ToBf16 } from '../../src/io/half.js';
import { loadModel, trainAll } from '../../src/models/load.js';
import { loadAdapter, mergeAdapter } from '../../src/models/lora.js';
import { forward } from '../../src/models/model.js';
import { batchSigmoidLoss } from '../../src/train/dpo.js';
import { LOSSES } from '../../src/train/losses.js';
import { sequenceLogps } from '../../src/train/logps.js';
import { assertClose, randn, rng } from '../kernels/helpers.js';
import { ARCHS, FIXTURES, fixture, relError } from './fixtures.js';
import { batchOf } from './parity-suite.js';

const TOL = 1e-4;
// Against transformers in float32 on the same bf16 weights the arithmetic is the same as the f32
// path's (errors ~1e-7); these tolerances sit well below what bf16 rounding moves (>= 1.4e-5 for
// the sequence log-probs and >= 4e-5 for the largest gradient error of every family), so a
// weight left f32 or rounded differently fails.
const TIGHT = 2e-6,
  TIGHT_GRAD = 1e-5;
const BF16_TOL = 3e-2; // transformers' bfloat16 arithmetic: 8 bits of mantissa

function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>, tol = TOL): void {
  const err = relError(actual, expected);
  if (process.env.SHOW_ERR) console.log(what, err.toExponential(2));
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

describe('kernels with a bf16 operand', () => {
  let rt: KernelRuntime;
  const backends: [string, Backend][] = [];
  before(async () => {
    rt = await KernelRuntime.create({ threads: 2 });
    backends.push(['reference', new CpuBackend(rt, { fast: false })], ['wasm', new CpuBackend(rt, { native: false })]);
    if (await loadNative()) backends.push(['native', new CpuBackend(rt, { native: true })]);
  });
  after(async () => {
    await rt.close();
  });

  // [M, N, K, transA, transB, batch, B broadcast over the batch]
  const cases: [number, number, number, boolean, boolean, number, boolean][] = [
    [5, 7, 9, false, true, 1, true],
    [33, 70, 19, false, true, 1, true],
    [2, 40, 64, false, true, 1, true],
    [6, 13, 21, false, false, 1, true],
    [17, 9, 40, true, false, 1, true],
    [8, 11, 30, true, true, 1, true],
    [4, 9, 12, false, true, 3, true],
    [4, 9, 12, false, false, 3, false],
    [4, 9, 12, true, true, 2, false],
  ];
  {
    test('matmul: f32 A times bf16 B equals the f32 product of the widened B (bit for bit: test/kernels/matmul-bf16)', () => {
      {
        for (const [M, N, K, tA, tB, batch, bcast] of cases) {
          const r = rng(M * 131 + N * 7 + K);
          const a = Float32Array.from(randn(r, batch * M * K));
          const nb = (bcast ? 1 : batch) * K * N;
          const bBits = f32ToBf16(Float32Array.from(randn(r, nb))),
            b = bf16ToF32(bBits);
          const c0 = Float32Array.from(randn(r, batch * M * N));
          const sA = M * K,
            sB = bcast ? 0 : K * N,
            sC = M * N;
          for (const accumulate of [false, true]) {
            // float64 truth on the widened values
            const want = new Float64Array(batch * M * N);
            for (let i = 0; i < batch; i++) {
              for (let m = 0; m < M; m++) {
                for (let n = 0; n < N; n++) {
                  let s = accumulate ? c0[i * sC + m * N + n] : 0;
                  for (let k = 0; k < K; k++) {
                    const av = a[i * sA + (tA ? k * M + m : m * K + k)],
                      bv = b[i * sB + (tB ? n * K + k : k * N + n)];
                    s += av * bv;
                  }
                  want[i * sC + m * N + n] = s;
                }
              }
            }
            for (const [label, be] of backends) {
              const ta = E.tensor(a, [a.length], 'f32', be),
                tb = E.tensor(bBits, [nb], 'bf16', be),
                tc = E.tensor(c0, [c0.length], 'f32', be);
              be.kernels.matmul({
                a: ta.storage,
                b: tb.storage,
                c: tc.storage,
                M,
                N,
                K,
                transA: tA,
                transB: tB,
                accumulate,
                batch,
                strideA: sA,
                strideB: sB,
                strideC: sC,
              });
              assertClose(
                be.readSync!(tc.storage),
                want,
                `${label} M${M} N${N} K${K} tA${+tA} tB${+tB} batch ${batch}${bcast ? ' (B shared)' : ''} acc ${+accumulate}`,
                1e-5,
                1e-5,
              );
              for (const t of [ta, tb, tc]) t.dispose();
            }
          }
        }
      }
    });
  }

  test('embedding gathers bf16 rows into f32 exactly; ids out of range are named', () => {
    const [V, D, N] = [11, 13, 9];
    const bits = f32ToBf16(Float32Array.from(randn(rng(5), V * D))),
      wide = bf16ToF32(bits);
    const ids = Int32Array.from({ length: N }, (_, i) => (i * 7) % V);
    for (const [label, be] of backends) {
      const w = E.tensor(bits, [V, D], 'bf16', be),
        id = E.tensor(ids, [N], 'i32', be);
      const out = E.embedding(w, id);
      assert.equal(out.dtype, 'f32');
      const got = be.readSync!(out.storage);
      for (let r = 0; r < N; r++)
        assert.deepEqual(
          Array.from(got.subarray(r * D, (r + 1) * D)),
          Array.from(wide.subarray(ids[r] * D, (ids[r] + 1) * D)),
          `${label} row ${r}`,
        );
      const bad = E.tensor(Int32Array.from([0, V]), [2], 'i32', be);
      assert.throws(() => E.embedding(w, bad), /out of range|outside/, label);
      for (const t of [w, id, out, bad]) t.dispose();
    }
  });

  test('bf16 tensors: round to nearest even on write, read back as f32, and refuse other ops and training', () => {
    const be = backends[0][1];
    const t = E.tensor([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5], [2, 2], 'bf16', be);
    assert.deepEqual(Array.from(be.readSync!(t.storage)), [1, 1, 1 + 2 ** -6, -2.5]);
    assert.equal(be.liveBytes() >= 8, true);
    assert.throws(() => E.add(t, t), /bfloat16 frozen weight|bf16 storage/);
    const x = E.tensor([1, 2], [1, 2], 'f32', be);
    t.requiresGrad = true;
    assert.throws(() => E.matmul(x, t), /cannot be trained/);
    for (const u of [t, x]) u.dispose();
  });
});

describe('frozen bf16 weights against transformers', () => {
  before(async () => {
    await initEngine({ device: 'cpu' });
  });

  for (const arch of ARCHS) {
    test(`${arch}: bf16 checkpoint, reference log-probs and DPO gradients with a bf16 reference`, async () => {
      const fx = fixture(arch),
        fz = fixture(arch, 'expected-frozen-bf16.safetensors');
      const batch = batchOf(fx);
      const { rows: R, T } = batch;
      const mask = (): E.Tensor => E.tensor(Float32Array.from(batch.attentionMask), [R, T]);
      // The bf16 checkpoint, kept bf16: transformers in float32 on the same weights (1e-4), and in
      // bfloat16 arithmetic (bf16 tolerance).
      const bf = loadModel(`${FIXTURES}${arch}/policy-bf16`, { frozenDtype: 'bf16' });
      assert.ok(
        [...bf.params.values()].some((t) => t.dtype === 'bf16'),
        'matrices are kept in bf16',
      );
      const logits = await E.tidy(() =>
        forward(bf, E.tensor(batch.inputIds, [R, T], 'i32'), { attentionMask: mask() }),
      ).toArray();
      expectClose('policy_bf16.logits (float32 compute)', logits, fz.tensors.get('policy_bf16.logits')!.f32, TIGHT);
      expectClose(
        'policy_bf16.logits (transformers bf16)',
        logits,
        fixture(arch, 'expected-bf16.safetensors').tensors.get('policy_bf16.logits')!.f32,
        BF16_TOL,
      );
      for (const t of bf.params.values()) t.dispose();

      // The f32 reference checkpoint, its matrices rounded to bf16 on load.
      const reference = loadModel(`${FIXTURES}${arch}/reference`, { frozenDtype: 'bf16' });
      const seq = await E.tidy(() => E.noGrad(() => sequenceLogps(reference, batch).seq)).toArray();
      const want = fz.tensors.get('reference_bf16.seq_logps')!.f32;
      expectClose('reference_bf16.seq_logps', seq, want, TIGHT);
      assert.ok(
        relError(fx.tensors.get('reference.seq_logps')!.f32, want) > 5 * TIGHT,
        'bf16 rounding moves the reference log-probs',
      );
      expectClose(
        'reference_bf16.seq_logps (f32 reference, bf16 tolerance)',
        seq,
        fx.tensors.get('reference.seq_logps')!.f32,
        BF16_TOL,
      );

      const policy = loadModel(`${FIXTURES}${arch}/policy`);
      const params = trainAll(policy);
      await E.tidyAsync(async () => {
        const l = batchSigmoidLoss(policy, reference, batch);
        E.backward(l);
        return l.item();
      });
      let moved = 0;
      for (const { name, tensor } of params) {
        moved = Math.max(moved, relError(fx.tensors.get(`grad.${name}`)!.f32, fz.tensors.get(`grad.${name}`)!.f32));
        expectClose(`grad.${name}`, await tensor.grad!.toArray(), fz.tensors.get(`grad.${name}`)!.f32, TIGHT_GRAD);
        expectClose(
          `grad.${name} (f32 reference, bf16 tolerance)`,
          await tensor.grad!.toArray(),
          fx.tensors.get(`grad.${name}`)!.f32,
          BF16_TOL,
        );
      }
      assert.ok(
        moved > 3 * TIGHT_GRAD,
        `bf16 rounding of the reference moves some gradient by more than the tolerance (${moved})`,
      );
      for (const t of [...policy.params.values(), ...reference.params.values()]) t.dispose();
    });
  }

  test('llama LoRA on a bf16 base: adapter-on / off log-probs and adapter gradients equal PEFT on the bf16-rounded base', async () => {
    const model = loadModel(`${FIXTURES}llama/policy`, { frozenDtype: 'bf16' });
    const f32Bytes = [...loadModel(`${FIXTURES}llama/policy`).params.values()].reduce((n, t) => {
      const b = t.size * 4;
      t.dispose();
      return n + b;
    }, 0);
    const bytes = [...model.params.values()].reduce((n, t) => n + t.size * (t.dtype === 'bf16' ? 2 : 4), 0);
    assert.ok(bytes < 0.52 * f32Bytes, `bf16 base holds ${bytes} bytes, f32 ${f32Bytes}`);
    const info = loadAdapter(model, `${FIXTURES}llama/lora`);
    const expected = fixture('llama/lora', 'expected-frozen-bf16.safetensors');
    const b = batchOf(fixture('llama'));
    await E.tidyAsync(async () => {
      const pol = sequenceLogps(model, b, { adapter: true });
      const ref = E.noGrad(() => sequenceLogps(model, b, { adapter: false }));
      expectClose(
        'adapter-on seq_logps',
        await pol.seq.toArray(),
        expected.tensors.get('policy.seq_logps')!.f32,
        TIGHT,
      );
      expectClose(
        'adapter-off seq_logps',
        await ref.seq.toArray(),
        expected.tensors.get('reference.seq_logps')!.f32,
        TIGHT,
      );
      const lens = E.tensor(Float32Array.from(pol.tokens));
      const l = E.mean(
        LOSSES.sigmoid.fn(
          {
            policyChosen: E.narrow(pol.seq, 0, 0, 2),
            policyRejected: E.narrow(pol.seq, 0, 2, 2),
            refChosen: E.narrow(ref.seq, 0, 0, 2),
            refRejected: E.narrow(ref.seq, 0, 2, 2),
            chosenLengths: E.narrow(lens, 0, 0, 2),
            rejectedLengths: E.narrow(lens, 0, 2, 2),
          },
          { beta: 0.1, labelSmoothing: 0, simpoGamma: 0 },
        ).losses,
      );
      E.backward(l);
    });
    for (const p of info.params) {
      const i = p.name.lastIndexOf('.');
      expectClose(
        `grad ${p.name}`,
        await p.tensor.grad!.toArray(),
        expected.tensors.get(`grad.base_model.model.${p.name.slice(0, i)}.${p.name.slice(i + 1)}.default.weight`)!.f32,
        TIGHT_GRAD,
      );
    }
    assert.throws(() => mergeAdapter(model), /bfloat16 frozen weight/);
    assert.throws(() => trainAll(model), /bfloat16 frozen weight/);
  });
});

describe('frozen_dtype bfloat16 in a DPO run', () => {
  test('the reference (full fine-tuning) and the LoRA base hold half the bytes; the first loss matches the float32 run', async () => {
    await initEngine({ device: 'cpu' });
    const { join } = await import('node:path');
    const { readFileSync } = await import('node:fs');
    const { defaultsOf, COMMON_OPTIONS, DPO_OPTIONS } = await import('../../src/train/config.js');
    const { runDpo } = await import('../../src/train/run.js');
    const { tempRoot, tinyModel, tinyPreferences } = await import('../train/tiny.js');
    const root = tempRoot();
    const model = await tinyModel(root, 3);
    const data = tinyPreferences(root, 8);
    const run = async (name: string, over: Record<string, unknown>): Promise<{ report: string; loss: number }> => {
      const lines: string[] = [];
      const cfg = {
        ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }),
        device: 'cpu',
        model_name_or_path: model,
        dataset: data,
        output_dir: join(root, name),
        max_steps: 1,
        per_device_train_batch_size: 4,
        logging_steps: 1,
        save_steps: 0,
        memory_report: true,
        ...over,
      };
      await runDpo(cfg as Parameters<typeof runDpo>[0], { quiet: true, log: (l) => lines.push(l) });
      const metrics = readFileSync(join(root, name, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      return { report: lines.filter((l) => l.startsWith('memory (cpu, step '))[0], loss: metrics[0].loss };
    };
    const MiB = 2 ** 20;
    const num = (line: string, re: RegExp): number => Number(re.exec(line)![1]) * MiB;
    const full32 = await run('full32', {}),
      full16 = await run('full16', { frozen_dtype: 'bfloat16' });
    const ratio = num(full16.report, /reference ([\d.]+)/) / num(full32.report, /reference ([\d.]+)/);
    assert.ok(ratio > 0.49 && ratio < 0.53, `bf16 reference / f32 reference = ${ratio}: ${full16.report}`);
    assert.equal(
      num(full16.report, /policy ([\d.]+)/),
      num(full32.report, /policy ([\d.]+)/),
      'the trained policy stays f32',
    );
    assert.ok(Math.abs(full16.loss - full32.loss) < 1e-3, `loss ${full16.loss} vs ${full32.loss}`);
    const lora32 = await run('lora32', { use_peft: true }),
      lora16 = await run('lora16', { use_peft: true, frozen_dtype: 'bfloat16' });
    const base = num(lora16.report, /policy ([\d.]+)/) / num(lora32.report, /policy ([\d.]+)/);
    assert.ok(base > 0.49 && base < 0.55, `LoRA base (+ adapter) bf16 / f32 = ${base}: ${lora16.report}`);
    assert.ok(Math.abs(lora16.loss - lora32.loss) < 1e-3, `loss ${lora16.loss} vs ${lora32.loss}`);
  });
});
