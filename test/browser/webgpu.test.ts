// The WebGPU backend in a real browser, through navigator.gpu: headless Chromium (its own
// SwiftShader Vulkan, no GPU needed) loads the engine as ES modules, builds the transformers
// fixture models from fetched safetensors, and checks sequence log-probs, the sigmoid DPO loss and
// every parameter's gradient against transformers 5.17's numbers (as test/webgpu/models.test.ts
// does in Node through Dawn); then a few AdamW steps on the device must lower the loss.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPORT, runInChromium } from './harness.js';

const page = (
  arch: string,
): string => `<!doctype html><meta charset="utf-8"><title>tsdpo webgpu</title><script type="module">
${REPORT}
try {
  const E = await import('/dist/src/core/index.js');
  const { initEngine, webgpuBackend } = await import('/dist/src/engine.js');
  const { parseSafetensors } = await import('/dist/src/io/safetensors-format.js');
  const { buildModel, trainAll } = await import('/dist/src/models/build.js');
  const { sequenceLogps } = await import('/dist/src/train/logps.js');
  const { LOSSES, splitPairs } = await import('/dist/src/train/losses.js');
  const { DEFAULT_OPTIMIZER, Optimizer } = await import('/dist/src/train/optim.js');
  if (!navigator.gpu) throw new Error('no navigator.gpu in this browser');
  // 'auto' takes hardware adapters only: with SwiftShader it must fall back to the CPU, saying why.
  const notices = [];
  const auto = (await initEngine({ device: 'auto', threads: 2, log: (m) => notices.push(m) })).name;
  const be = await webgpuBackend(true);
  E.setBackend(be);
  const get = async (path) => {
    const res = await fetch(path);
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    return res;
  };
  const dir = '/test/fixtures/hf-tiny/${arch}/';
  const tensors = async (file) =>
    parseSafetensors(new Uint8Array(await (await get(dir + file)).arrayBuffer()), file).tensors;
  const model = async (name) => {
    const config = await (await get(dir + name + '/config.json')).json();
    return buildModel(config, await tensors(name + '/model.safetensors'), name, be);
  };
  const policy = await model('policy'), reference = await model('reference');
  const fx = await tensors('expected.safetensors'), json = await (await get(dir + 'expected.json')).json();
  const ids = fx.get('input_ids'), [rows, T] = ids.shape, P = rows / 2;
  const batch = {
    rows, T, inputIds: ids.toInt32(),
    attentionMask: fx.get('attention_mask').toInt32(), completionMask: fx.get('completion_mask').toFloat32(),
  };
  const relErr = (a, b) => {
    let d = 0, m = 0;
    for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
    return d / Math.max(m, 1e-12);
  };
  // Eq. 7 of arXiv:2305.18290 on rows chosen_0.., rejected_0.. (what batchSigmoidLoss does in Node).
  const dpoLoss = () => {
    const pol = sequenceLogps(policy, batch);
    const ref = E.noGrad(() => sequenceLogps(reference, batch).seq);
    const pairs = splitPairs({ policy: pol.seq, ref, tokens: pol.tokens }, P);
    return E.mean(LOSSES.sigmoid.fn(pairs, { beta: json.beta, labelSmoothing: 0, simpoGamma: 0 }).losses);
  };
  const errors = {};
  for (const [name, m] of [['policy', policy], ['reference', reference]]) {
    const seq = await E.tidy(() => sequenceLogps(m, batch).seq).toArray();
    errors[name + '.seq_logps'] = relErr(seq, fx.get(name + '.seq_logps').toFloat32());
  }
  const params = trainAll(policy);
  const loss = await E.tidyAsync(async () => { const l = dpoLoss(); E.backward(l); return l.item(); });
  let grads = 0, gradErr = 0;
  for (const { name, tensor } of params) {
    gradErr = Math.max(gradErr, relErr(await tensor.grad.toArray(), fx.get('grad.' + name).toFloat32()));
    grads++;
  }
  const opt = new Optimizer(params, { ...DEFAULT_OPTIMIZER, weightDecay: 0.01 });
  const losses = [];
  for (let s = 0; s < 6; s++) {
    if (s > 0) {
      const l = E.tidy(() => { const l = dpoLoss(); E.backward(l); return l; });
      losses.push(await l.item());
      l.dispose();
    } else losses.push(loss);
    opt.update(1e-3);
    opt.zeroGrad();
  }
  report({ ok: true, adapter: be.adapter, fallback: be.fallbackAdapter, auto, notices, errors, loss,
    expectedLoss: json.losses.sigmoid, grads, gradErr,
    expectedGrads: [...fx.keys()].filter((k) => k.startsWith('grad.')).length, losses });
} catch (e) {
  report({ ok: false, error: String(e && e.stack || e) });
}
</script>`;

// WebGPU is behind a flag in Chromium on Linux; SwiftShader is the adapter without a GPU.
const FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader'];

for (const arch of ['gpt2', 'llama']) {
  test(
    `WebGPU in headless Chromium (navigator.gpu): ${arch} log-probs, ` +
      `DPO loss and gradients match transformers; AdamW lowers the loss`,
    { timeout: 150_000 },
    async (t) => {
      const r = await runInChromium(t, page(arch), FLAGS, 120_000);
      if (!r) return;
      t.diagnostic(
        `adapter: ${r.adapter} (fallback ${r.fallback}; auto chose ${r.auto}); errors ` +
          `${JSON.stringify(r.errors)}, gradients ${r.gradErr.toExponential(2)}, losses ` +
          `${r.losses.map((l: number) => l.toFixed(4)).join(' ')}`,
      );
      if (r.fallback) {
        assert.equal(r.auto, 'cpu', '--device auto skips a software adapter');
        assert.match(r.notices.join('\n'), /runs on the CPU; using the CPU backend/);
      } else {
        assert.equal(r.auto, 'webgpu');
      }
      for (const [what, err] of Object.entries(r.errors as Record<string, number>))
        assert.ok(err <= 1e-4, `${what}: relative error ${err} > 1e-4`);
      assert.ok(Math.abs(r.loss - r.expectedLoss) < 1e-5, `loss ${r.loss} vs transformers ${r.expectedLoss}`);
      assert.equal(r.grads, r.expectedGrads, 'every parameter with a fixture gradient was checked');
      assert.ok(r.gradErr <= 1e-4, `largest gradient relative error ${r.gradErr} > 1e-4`);
      assert.ok(r.losses[5] < r.losses[0] - 1e-3, `losses ${r.losses}`);
    },
  );
}
