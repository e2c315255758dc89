// One run skeleton (train/skeleton.ts, train/methods.ts): train() on rows and a model in memory and
// runTraining() on the same rows written to files and the same model read from its folder take the
// same steps, so every metrics line (train and eval) is the same number for number; and grpo / rloo
// through runTraining report their steps and metrics as events like the other methods.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { initEngine, loadModel, loadTokenizer, runTraining, train, type TrainEvent } from '../../src/index.js';
import { imdbPrompts } from '../../src/demo/prompts.js';
import { adapterOf } from '../../src/models/adapter.js';
import { tempDir } from '../helpers/assets.js';
import { DEMO_MODEL } from '../helpers/cli.js';

await initEngine({ device: 'cpu', log: () => {} });
const root = tempDir('tsdpo-skeleton-');
after(() => rmSync(root, { recursive: true, force: true }));
const dir = (prefix: string): string => mkdtempSync(join(root, prefix));
process.env.TSDPO_CACHE_DIR = dir('cache-'); // precomputed reference log-probs

const PAIRS = [
  ['The movie was', ' a joy to watch.', ' a waste of time.'],
  ['I found the plot', ' clever and moving.', ' dull and silly.'],
  ['The acting is', ' superb.', ' terrible.'],
  ['Overall this film', ' is a delight.', ' is a mess.'],
  ['The soundtrack', ' lifts every scene.', ' grates on the ear.'],
].map(([prompt, chosen, rejected]) => ({ prompt, chosen, rejected }));
const EVAL = PAIRS.slice(0, 2).map((p) => ({ prompt: p.prompt, chosen: p.rejected, rejected: p.chosen }));
const UNPAIRED = (rows: typeof PAIRS) =>
  rows.flatMap((p) => [
    { prompt: p.prompt, completion: p.chosen, label: true },
    { prompt: p.prompt, completion: p.rejected, label: false },
  ]);
const SFT = (rows: typeof PAIRS) => rows.map((p) => ({ prompt: p.prompt, completion: p.chosen }));
const BASE = {
  learning_rate: 1e-3,
  max_steps: 3,
  per_device_train_batch_size: 2,
  logging_steps: 1,
  eval_steps: 2,
  seed: 1,
};

/** The rows as a .jsonl file. */
function jsonl(rows: unknown[]): string {
  const f = join(dir('data-'), 'rows.jsonl');
  writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return f;
}

/** The metrics lines without the clock's (tokens_per_second, train_runtime, ..._per_second). */
const numbers = (history: Record<string, number>[]) =>
  history.map((l) => Object.fromEntries(Object.entries(l).filter(([k]) => !/runtime|per_second/.test(k))));

/** Every metrics line of both runs, equal number for number; the message names the first difference. */
function assertSameRuns(label: string, files: Record<string, number>[], memory: Record<string, number>[]): void {
  const [a, b] = [numbers(files), numbers(memory)];
  assert.ok(a.length >= 4, `${label}: ${a.length} metrics lines through files`);
  assert.ok(
    a.some((l) => Object.keys(l).some((k) => k.startsWith('eval_'))),
    `${label}: no eval line through files`,
  );
  assert.equal(b.length, a.length, `${label}: ${b.length} metrics lines in memory, ${a.length} through files`);
  a.forEach((want, i) => {
    assert.deepEqual(Object.keys(b[i]).sort(), Object.keys(want).sort(), `${label}: keys of line ${i + 1}`);
    for (const [k, v] of Object.entries(want))
      assert.ok(Object.is(b[i][k], v), `${label}: line ${i + 1} ${k}: ${b[i][k]} in memory, ${v} through files`);
  });
}

type Method = 'dpo' | 'sft' | 'kto';

/**
 * `method` through runTraining (files) and through train (memory) on the same rows and config; `reference`
 * gives the in-memory run a frozen copy of the model as its reference, as the file run loads one.
 */
async function bothWays(
  method: Method,
  trainRows: unknown[],
  evalRows: unknown[],
  config: Record<string, unknown>,
  reference = false,
): Promise<{ files: Record<string, number>[]; memory: Record<string, number>[]; events: TrainEvent[] }> {
  const events: TrainEvent[] = [];
  const cli = runTraining(method, {
    ...config,
    model_name_or_path: DEMO_MODEL,
    dataset: jsonl(trainRows),
    eval_dataset: jsonl(evalRows),
    output_dir: join(dir('out-'), 'out'),
    device: 'cpu',
  });
  for await (const e of cli) events.push(e);
  const files = (await cli).history;
  const memory = (
    await train(method, {
      model: loadModel(DEMO_MODEL),
      tokenizer: loadTokenizer(DEMO_MODEL),
      train: trainRows,
      eval: evalRows,
      ...(reference ? { reference: loadModel(DEMO_MODEL) } : {}),
      config,
    })
  ).history;
  return { files, memory, events };
}

test('dpo in memory and from files: the same metrics, step by step (precomputed, frozen, LoRA, reference-free)', async () => {
  const variants: [string, Record<string, unknown>, boolean][] = [
    ['precompute_ref_log_probs', { beta: 0.1, precompute_ref_log_probs: true }, false],
    ['a frozen reference model', { beta: 0.1 }, true],
    ['a new LoRA adapter (reference: adapter off)', { beta: 0.1, use_peft: true, lora_r: 4 }, false],
    ['a loss without reference (simpo)', { loss_type: 'simpo' }, false],
  ];
  for (const [label, cfg, reference] of variants) {
    const { files, memory, events } = await bothWays('dpo', PAIRS, EVAL, { ...BASE, ...cfg }, reference);
    assertSameRuns(`dpo, ${label}`, files, memory);
    assert.equal(events.filter((e) => e.type === 'step').length, 3, `dpo, ${label}: step events through files`);
  }
});

test('sft in memory and from files: the same metrics, step by step', async () => {
  const { files, memory } = await bothWays('sft', SFT(PAIRS), SFT(EVAL), BASE);
  assertSameRuns('sft', files, memory);
});

test('kto in memory and from files: the same metrics, step by step (precomputed, frozen reference)', async () => {
  const cfg = { ...BASE, per_device_train_batch_size: 4 };
  const pre = await bothWays('kto', UNPAIRED(PAIRS), UNPAIRED(EVAL), { ...cfg, precompute_ref_log_probs: true });
  assertSameRuns('kto, precompute_ref_log_probs', pre.files, pre.memory);
  const frozen = await bothWays('kto', UNPAIRED(PAIRS), UNPAIRED(EVAL), cfg, true);
  assertSameRuns('kto, a frozen reference model', frozen.files, frozen.memory);
});

test('a run in memory whose data fail leaves the model as it was (no new LoRA adapter attached)', async () => {
  const model = loadModel(DEMO_MODEL);
  const run = train('dpo', {
    model,
    tokenizer: loadTokenizer(DEMO_MODEL),
    train: [{ prompt: 'The movie was', chosen: ' fine.', rejected: ' bad.' }],
    config: { use_peft: true, max_length: 2 },
  });
  await assert.rejects(async () => await run, /train\('dpo'\): no training examples left/);
  assert.equal(adapterOf(model), null, 'an adapter was attached to the model of a failed run');
});

test('grpo and rloo through runTraining report step and metrics events, one metrics event per line', async () => {
  const prompts = jsonl(
    imdbPrompts({ split: 'train' })
      .slice(0, 4)
      .map((p) => ({ prompt: p.prompt })),
  );
  for (const method of ['grpo', 'rloo'] as const) {
    const events: TrainEvent[] = [];
    const run = runTraining(method, {
      model_name_or_path: DEMO_MODEL,
      dataset: prompts,
      output_dir: join(dir('rl-'), 'out'),
      device: 'cpu',
      max_steps: 2,
      per_device_train_batch_size: 4,
      num_generations: 2,
      max_completion_length: 4,
      logging_steps: 1,
    });
    for await (const e of run) events.push(e);
    const summary = await run;
    const steps = events.filter((e) => e.type === 'step');
    assert.deepEqual(
      steps.map((e) => e.type === 'step' && [e.step, e.total]),
      [
        [1, 2],
        [2, 2],
      ],
      `${method}: step events`,
    );
    const metrics = events.flatMap((e) => (e.type === 'metrics' ? [e.metrics] : []));
    assert.deepEqual(metrics, summary.history, `${method}: the metrics events are the run's metrics lines`);
    assert.ok(
      metrics.some((l) => typeof l.reward === 'number'),
      `${method}: a metrics event with the reward`,
    );
  }
});
