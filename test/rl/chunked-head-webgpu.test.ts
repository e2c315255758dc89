// GRPO on WebGPU with the storage-buffer binding limit forced below a micro-batch's logits: the
// fused log-softmax takes no split tensor, so the run works only because the chunked head keeps
// each chunk's logits within one binding. Checked against the same run on the CPU backend. Each
// run is a process of its own (test/rl/fixed-grpo.ts), as the limit is read when WebGPU opens.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tempRoot } from '../train/tiny.js';
import { GPU } from '../webgpu/gpu.js';
import { BS, TC, V, writeFixture } from './fixed-grpo.js';

const SCRIPT = fileURLToPath(new URL('./fixed-grpo.js', import.meta.url));
/** Bytes of a binding: below the (BS * TC, V) logits (1 MiB), above every activation of the tiny model. */
const LIMIT = 200_000;

describe('webgpu: GRPO with the logits above the binding limit', { skip: GPU.skip }, () => {
  test(`grpo with maxStorageBufferBindingSize ${LIMIT} bytes: the metrics and log-probs of the CPU run`, async () => {
    await initEngine({ device: 'cpu', threads: 1 });
    const root = tempRoot();
    await writeFixture(root);
    assert.ok(BS * TC * V * 4 > LIMIT, 'the logits of a micro-batch exceed the binding limit');
    const run = (device: 'cpu' | 'webgpu') => {
      const out = join(root, device);
      const env = { ...process.env };
      delete env.TSDPO_WEBGPU_MAX_BINDING;
      if (device === 'webgpu') env.TSDPO_WEBGPU_MAX_BINDING = String(LIMIT);
      const r = spawnSync(process.execPath, [SCRIPT, 'grpo', root, out, device], { encoding: 'utf8', env });
      assert.equal(r.status, 0, `grpo on ${device}: ${r.stderr}`);
      const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as {
        logps: number[][];
        headPeakBytes: number;
      };
      return { metrics: readMetrics(out), ...result };
    };
    const cpu = run('cpu'),
      gpu = run('webgpu');
    // Each of a chunk's three (n, V) tensors (logits, scaled, gradient) fits one binding.
    assert.ok(
      gpu.headPeakBytes / 3 <= LIMIT,
      `webgpu: a chunk's logits take ${gpu.headPeakBytes / 3} bytes, above the ${LIMIT}-byte binding`,
    );
    assert.equal(gpu.metrics.length, cpu.metrics.length, 'metrics lines');
    const worst = { metric: 0, logp: 0 };
    cpu.metrics.forEach((line, s) => {
      for (const [k, v] of Object.entries(line)) {
        if (/time|per_second/.test(k)) continue;
        const d = Math.abs(v - gpu.metrics[s][k]) / Math.max(1, Math.abs(v));
        assert.ok(d <= 1e-5, `step ${s + 1} ${k}: cpu ${v}, webgpu ${gpu.metrics[s][k]}`);
        worst.metric = Math.max(worst.metric, d);
      }
    });
    assert.equal(gpu.logps.length, cpu.logps.length, 'rows of training forwards');
    cpu.logps.forEach((row, r) =>
      row.forEach((v, t) => {
        const d = Math.abs(v - gpu.logps[r][t]);
        assert.ok(d <= 1e-5 * Math.max(1, Math.abs(v)), `log-prob ${r}, ${t}: cpu ${v}, webgpu ${gpu.logps[r][t]}`);
        worst.logp = Math.max(worst.logp, d);
      }),
    );
    console.log(`# webgpu (binding ${LIMIT} bytes) vs cpu: ${JSON.stringify(worst)}`);
  });
});
