// Batched generation with left padding equals generating each prompt alone; sampling honours
// top-k; saving a model and loading it back is bit-exact (also sharded); `tsdpo logprobs` gives
// transformers' sequence log-probs from outside.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, test } from 'node:test';
import { Rng } from '../../src/core/index.js';
import { initEngine } from '../../src/engine.js';
import { generate } from '../../src/eval/generate.js';
import { saveHfFolder } from '../../src/io/hf.js';
import { hostParams, loadModel, saveModel } from '../../src/models/load.js';
import { ARCHS, FIXTURES, fixture } from './fixtures.js';

before(async () => {
  await initEngine({ device: 'cpu' });
});

for (const arch of ['gpt2', 'qwen3', 'gemma3']) {
  test(`${arch}: batched left-padded greedy generation equals one prompt at a time`, async () => {
    const model = loadModel(`${FIXTURES}${arch}/policy`);
    const prompts = [
      [5, 17, 300, 41, 9, 88, 120],
      [7, 8],
      [400, 3, 3, 50],
    ];
    const batched = await generate(model, prompts, { maxNewTokens: 8, padId: 0 });
    for (let i = 0; i < prompts.length; i++) {
      const alone = await generate(model, [prompts[i]], { maxNewTokens: 8 });
      assert.deepEqual(batched.tokens[i], alone.tokens[0], `prompt ${i}`);
      batched.logps[i].forEach((lp, t) =>
        assert.ok(Math.abs(lp - alone.logps[0][t]) < 1e-4, `prompt ${i} token ${t} log-prob`),
      );
    }
  });
}

test('sampling: top_k 1 is greedy, EOS stops a row', async () => {
  const model = loadModel(`${FIXTURES}llama/policy`);
  const greedy = await generate(model, [[3, 4, 5]], { maxNewTokens: 6 });
  const k1 = await generate(model, [[3, 4, 5]], {
    maxNewTokens: 6,
    doSample: true,
    topK: 1,
    temperature: 0.7,
    rng: new Rng(9),
  });
  assert.deepEqual(k1.tokens, greedy.tokens);
  const stop = greedy.tokens[0][2];
  const stopped = await generate(model, [[3, 4, 5]], { maxNewTokens: 6, eosIds: [stop] });
  assert.deepEqual(stopped.tokens[0], greedy.tokens[0].slice(0, greedy.tokens[0].indexOf(stop) + 1));
});

test('save / load round trip is bit-exact, single file and sharded', async () => {
  for (const arch of ARCHS) {
    const model = loadModel(`${FIXTURES}${arch}/policy`);
    const dir = join(mkdtempSync(join(tmpdir(), 'tsdpo-save-')), 'm');
    await saveModel(model, dir);
    const again = await hostParams(loadModel(dir)),
      orig = await hostParams(model);
    // hostParams reads each tensor when its data is asked for (a function on the CPU backend).
    const values = (d: Float32Array | (() => Float32Array)) => Float32Array.from(typeof d === 'function' ? d() : d);
    for (const [name, t] of orig) assert.deepEqual(values(again.get(name)!.data), values(t.data), `${arch} ${name}`);
    const sharded = join(mkdtempSync(join(tmpdir(), 'tsdpo-shard-')), 'm');
    saveHfFolder(sharded, { config: model.config, tensors: orig }, { maxShardBytes: 100_000 });
    assert.ok(readdirSync(sharded).includes('model.safetensors.index.json'));
    const fromShards = await hostParams(loadModel(sharded));
    for (const [name, t] of orig)
      assert.deepEqual(values(fromShards.get(name)!.data), values(t.data), `${arch} sharded ${name}`);
  }
});

test("tsdpo logprobs reproduces transformers' sequence log-probs", () => {
  const bin = fileURLToPath(new URL('../../../bin/tsdpo.js', import.meta.url));
  for (const arch of ['gpt2', 'mistral']) {
    const fx = fixture(arch);
    const ids = fx.tensors.get('input_ids')!,
      cm = fx.tensors.get('completion_mask')!.f32,
      am = fx.tensors.get('attention_mask')!.i32();
    const [R, T] = ids.shape,
      data = ids.i32();
    const lines: string[] = [];
    for (let r = 0; r < R; r++) {
      const n = Array.from(am.subarray(r * T, (r + 1) * T)).reduce((a, b) => a + b, 0);
      lines.push(
        JSON.stringify({
          input_ids: Array.from(data.subarray(r * T, r * T + n)),
          completion_mask: Array.from(cm.subarray(r * T, r * T + n)),
        }),
      );
    }
    const input = join(mkdtempSync(join(tmpdir(), 'tsdpo-lp-')), 'in.jsonl');
    writeFileSync(input, lines.join('\n'));
    const out = spawnSync(
      process.execPath,
      [bin, 'logprobs', '--model', `${FIXTURES}${arch}/policy`, '--input', input, '--device', 'cpu'],
      { encoding: 'utf8' },
    );
    assert.equal(out.status, 0, out.stderr);
    const got = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).logp);
    const want = fx.tensors.get('policy.seq_logps')!.f32;
    got.forEach((g: number, i: number) =>
      assert.ok(Math.abs(g - want[i]) < 1e-4 * Math.abs(want[i]), `${arch} row ${i}: ${g} vs ${want[i]}`),
    );
  }
});
