// `tsdpo ppo` on the shared loop (train/trainer.ts): a run killed after a checkpoint and resumed
// with --resume logs the update an uninterrupted run logs and ends with the same policy and critic.
// The checkpoint must carry what PPO keeps between updates: the sampling generator, the adaptive KL
// coefficient, the critic's weights and the shared optimizer's state; the resumed updates include
// the end of a pass over the prompts (two updates per pass here) and the next pass.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadReward, readPrompts } from '../../src/api/prompts.js';
import { PPO_OPTIONS, type PpoConfig } from '../../src/rl/config.js';
import { runPpo } from '../../src/rl/run.js';
import { COMMON_OPTIONS, defaultsOf } from '../../src/train/config.js';
import { DEMO_MODEL } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'tsdpo-ppo-resume-'));
const data = join(root, 'prompts.txt');
const LINES = ['The movie was', 'I thought the film', 'This story is', 'The actors were', 'The ending felt'];
writeFileSync(data, Array.from({ length: 4 }, () => LINES.join('\n')).join('\n') + '\n'); // 20 prompts

test(
  'ppo: a run resumed from its checkpoint after update 1 logs updates 2 and 3 and saves the weights of the uninterrupted run',
  { timeout: 180_000 },
  async () => {
    const out = join(root, 'run');
    const cfg = {
      ...defaultsOf(COMMON_OPTIONS),
      ...defaultsOf(PPO_OPTIONS),
      model_name_or_path: DEMO_MODEL,
      dataset: data,
      output_dir: out,
      reward: 'sentiment',
      device: 'cpu',
      pad_token_id: 2048,
      per_device_train_batch_size: 4,
      gradient_accumulation_steps: 2,
      num_mini_batches: 2,
      num_ppo_epochs: 2,
      num_train_epochs: 1, // 20 prompts, batches of 8: 3 updates, 2 per pass
      response_length: 6,
      temperature: 1,
      learning_rate: 3e-4,
      adap_kl_ctrl: true,
      init_kl_coef: 0.2,
      target: 0.01,
      horizon: 100,
      save_steps: 1,
      save_value: true,
      seed: 3,
    } as PpoConfig;
    const opts = {
      quiet: true,
      log: () => {},
      readPrompts: (tok: Parameters<typeof readPrompts>[2], n: number, p: number) =>
        readPrompts(data, 'prompt', tok, false, n, p),
      rewardFunction: (spec: string) => loadReward(spec),
    };
    const files = ['model.safetensors', join('value_model', 'model.safetensors')];
    const full = await runPpo(cfg, opts);
    assert.equal(full.updates, 3);
    const weights = files.map((f) => readFileSync(join(out, f)));

    // Killed after update 1: its last checkpoint is checkpoint-1.
    for (const c of ['checkpoint-2', 'checkpoint-3']) rmSync(join(out, c), { recursive: true });
    const resumed = await runPpo({ ...cfg, resume_from_checkpoint: true }, opts);
    assert.equal(resumed.updates, 3);
    assert.equal(resumed.history.length, 3);
    const noEps = (h: Record<string, number>) => ({ ...h, eps: 0 });
    assert.deepEqual(resumed.history.map(noEps), full.history.map(noEps), 'the resumed run logs the same updates');
    assert.notEqual(full.history[2].kl_coef, 0.2, 'the KL coefficient adapted (what the checkpoint must keep)');
    files.forEach((f, i) =>
      assert.ok(readFileSync(join(out, f)).equals(weights[i]), `${f}: the resumed run saves the same weights`),
    );
  },
);
