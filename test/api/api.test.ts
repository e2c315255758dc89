// The public API (src/index.ts): in-memory training runs the CLI's loop and gives the numbers of the
// same run through the CLI path (which test/reference checks against TRL 1.13); files in memory load
// the model, tokenizer and adapter that the folder loaders give; options are checked by name and type;
// runs report through events.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  adapterFromFiles,
  evaluate,
  generate,
  initEngine,
  loadAdapter,
  loadModel,
  loadTokenizer,
  logprobs,
  LOSS_NAMES,
  modelFromFiles,
  newAdapter,
  pairLogprobs,
  resolveConfig,
  Run,
  runTraining,
  saveAdapter,
  tokenizerFromFiles,
  train,
  type TrainEvent,
} from '../../src/index.js';
import { DEMO_MODEL } from '../helpers/cli.js';
import { tempDir } from '../helpers/assets.js';

await initEngine({ device: 'cpu', log: () => {} });

const PAIRS = [
  ['The movie was', ' a joy to watch.', ' a waste of time.'],
  ['I found the plot', ' clever and moving.', ' dull and silly.'],
  ['The acting is', ' superb.', ' terrible.'],
  ['Overall this film', ' is a delight.', ' is a mess.'],
].map(([prompt, chosen, rejected]) => ({ prompt, chosen, rejected }));
const folderFiles = (dir: string): Record<string, Uint8Array> =>
  Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
const CONFIG = {
  beta: 0.1,
  learning_rate: 1e-4,
  max_steps: 3,
  per_device_train_batch_size: 2,
  logging_steps: 1,
  seed: 1,
};

test(
  'train("dpo") in memory logs the metrics of the same run ' +
    'through runTraining (the CLI path, a frozen reference model)',
  async () => {
    const data = join(tempDir(), 'pairs.jsonl');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(data, PAIRS.map((p) => JSON.stringify(p)).join('\n') + '\n');
    const events: TrainEvent[] = [];
    const cli = runTraining('dpo', {
      ...CONFIG,
      model_name_or_path: DEMO_MODEL,
      dataset: data,
      output_dir: join(tempDir(), 'out'),
      device: 'cpu',
    });
    for await (const e of cli) events.push(e);
    const viaFiles = await cli;
    assert.ok(
      events.some((e) => e.type === 'log' && e.message.startsWith('train data: 4 examples')),
      'the data report is a log event',
    );
    assert.equal(events.filter((e) => e.type === 'step').length, 3);

    const model = loadModel(DEMO_MODEL),
      tokenizer = loadTokenizer(DEMO_MODEL);
    const run = train('dpo', { model, tokenizer, train: PAIRS, config: CONFIG });
    const metrics: Record<string, number>[] = [];
    run.onEvent((e) => {
      if (e.type === 'metrics') metrics.push(e.metrics);
    });
    const inMemory = await run;
    assert.equal(inMemory.steps, 3);
    assert.deepEqual(metrics, inMemory.history);
    const trainLines = (h: Record<string, number>[]) => h.filter((l) => 'rewards/margins' in l);
    assert.equal(trainLines(inMemory.history).length, 3);
    trainLines(viaFiles.history).forEach((want, i) => {
      const got = trainLines(inMemory.history)[i];
      for (const k of [
        'loss',
        'rewards/chosen',
        'rewards/rejected',
        'rewards/margins',
        'logps/chosen',
        'grad_norm',
        'learning_rate',
      ]) {
        assert.ok(
          Math.abs(got[k] - want[k]) <= 1e-4 * Math.max(1, Math.abs(want[k])),
          `step ${i + 1} ${k}: ${got[k]} in memory, ${want[k]} through files`,
        );
      }
    });
  },
);

test(
  'train("sft") and train("kto") in memory lower their loss ' + 'on the demo model; a LoRA run trains the adapter only',
  async () => {
    const tokenizer = loadTokenizer(DEMO_MODEL);
    const sft = await train('sft', {
      model: loadModel(DEMO_MODEL),
      tokenizer,
      train: PAIRS.map((p) => ({ prompt: p.prompt, completion: p.chosen })),
      config: { learning_rate: 1e-3, max_steps: 6, per_device_train_batch_size: 2, logging_steps: 2 },
    });
    const loss = (s: typeof sft) => s.history.filter((l) => 'loss' in l && !('train_loss' in l)).map((l) => l.loss);
    assert.ok(loss(sft).at(-1)! < loss(sft)[0], `sft losses ${loss(sft)}`);
    const rows = PAIRS.flatMap((p) => [
      { prompt: p.prompt, completion: p.chosen, label: true },
      { prompt: p.prompt, completion: p.rejected, label: false },
    ]);
    const kto = await train('kto', {
      model: loadModel(DEMO_MODEL),
      tokenizer,
      train: rows,
      config: { ...CONFIG, learning_rate: 1e-3, max_steps: 4, per_device_train_batch_size: 4 },
    });
    assert.ok(loss(kto).at(-1)! < loss(kto)[0], `kto losses ${loss(kto)}`);
    const model = loadModel(DEMO_MODEL);
    const before = await model.params.get('transformer.h.0.attn.c_attn.weight')!.toArray();
    const lora = await train('dpo', {
      model,
      tokenizer,
      train: PAIRS,
      config: { ...CONFIG, use_peft: true, lora_r: 4, learning_rate: 1e-2 },
    });
    assert.equal(lora.steps, 3);
    assert.deepEqual(
      await model.params.get('transformer.h.0.attn.c_attn.weight')!.toArray(),
      before,
      'base weights unchanged',
    );
    assert.ok(trainMargin(lora) > 0);
  },
);
const trainMargin = (s: { history: Record<string, number>[] }) =>
  s.history.filter((l) => 'rewards/margins' in l).at(-1)!['rewards/margins'];

test('files in memory load what the folder loaders load: model, tokenizer, adapter', async () => {
  const files = folderFiles(DEMO_MODEL);
  const [a, b] = [loadModel(DEMO_MODEL), await modelFromFiles(files, { label: 'demo' })];
  const [ta, tb] = [loadTokenizer(DEMO_MODEL), await tokenizerFromFiles(files)];
  assert.deepEqual(tb.encode('The movie was great'), ta.encode('The movie was great'));
  assert.equal(tb.eosId, ta.eosId);
  const rows = [{ prompt: 'The movie was', completion: ' fine.' }];
  assert.deepEqual(await logprobs(b, rows, { tokenizer: tb }), await logprobs(a, rows, { tokenizer: ta }));
  // An adapter saved by tsdpo, loaded from its folder and from its bytes.
  const dir = join(tempDir(), 'adapter');
  const m = loadModel(DEMO_MODEL);
  newAdapter(m, { r: 2, alpha: 4, seed: 3 });
  const B = [...m.linears.values()].find((l) => l.lora)!.lora!.B;
  B.backend.write(
    B.storage,
    Float32Array.from({ length: B.size }, (_, i) => Math.sin(i) * 0.05),
  );
  await saveAdapter(m, dir, DEMO_MODEL);
  const m1 = loadModel(DEMO_MODEL),
    m2 = loadModel(DEMO_MODEL);
  loadAdapter(m1, dir);
  await adapterFromFiles(m2, folderFiles(dir));
  assert.deepEqual(await logprobs(m2, rows, { tokenizer: ta }), await logprobs(m1, rows, { tokenizer: ta }));
  await assert.rejects(
    modelFromFiles({ 'config.json': '{}' }, { label: 'mine' }),
    /mine: expected model.safetensors or model.safetensors.index.json/,
  );
  await assert.rejects(tokenizerFromFiles({ 'config.json': '{}' }, { label: 'mine' }), /mine: no tokenizer.json/);
});

test('options: TRL names with their defaults; unknown names and wrong types are errors naming the option', () => {
  const c = resolveConfig('dpo', { beta: 0.5 });
  assert.equal(c.beta, 0.5);
  assert.deepEqual(c.loss_type, ['sigmoid']);
  assert.equal(resolveConfig('sft').learning_rate, 2e-5);
  assert.throws(() => resolveConfig('dpo', { betta: 1 } as never), /unknown option 'betta'/);
  assert.throws(() => resolveConfig('dpo', { max_steps: 1.5 }), /option max_steps expects int, got 1.5/);
  assert.throws(
    () => resolveConfig('dpo', { lr_scheduler_type: 'wavy' } as never),
    /lr_scheduler_type expects string \(constant, constant_with_warmup, linear, cosine\)/,
  );
  assert.ok(LOSS_NAMES.includes('sigmoid') && LOSS_NAMES.includes('ipo'));
});

test('train in memory refuses the options of runs from files, naming what takes their place', async () => {
  const inputs = { model: loadModel(DEMO_MODEL), tokenizer: loadTokenizer(DEMO_MODEL), train: PAIRS };
  await assert.rejects(
    train('dpo', { ...inputs, config: { output_dir: 'runs/x' } }).done,
    /train\('dpo'\): option output_dir belongs to runs from files; in memory, nothing is written/,
  );
  await assert.rejects(
    train('sft', { ...inputs, config: { model_name_or_path: 'x' } }).done,
    /option model_name_or_path belongs to runs from files; in memory, give the model/,
  );
});

test('generate, pairLogprobs and evaluate on the demo model', async () => {
  const model = loadModel(DEMO_MODEL),
    tokenizer = loadTokenizer(DEMO_MODEL);
  const [g] = await generate(model, tokenizer, ['The movie was'], { max_new_tokens: 5 });
  assert.equal(g.prompt, 'The movie was');
  assert.equal(g.tokens.length, 5);
  assert.equal(g.completion, tokenizer.decode(g.tokens, { skipSpecialTokens: true }));
  const p = await pairLogprobs(model, tokenizer, PAIRS.slice(0, 1), { reference: model });
  assert.equal(p[0].margin, 0, 'a model against itself has margin 0');
  const seq = await logprobs(model, [{ prompt: 'The movie was', completion: ' a joy to watch.' }], { tokenizer });
  assert.ok(Math.abs(seq[0].logp - p[0].chosen_logp) < 1e-4, 'the chosen completion scored alone');
  const e = await evaluate(model, model, tokenizer, ['The movie was', 'I think'], () => 1, {
    samples: 2,
    max_new_tokens: 4,
  });
  assert.deepEqual([e.policy_reward, e.kl, e.win_rate], [1, 0, 0.5]);
  assert.equal(e.completions.policy.length, 2);
});

test('Run: events in order through the iterator, the result through await, a failure through both', async () => {
  const run = new Run<number, string>(async (emit) => {
    emit(1);
    await new Promise((r) => setTimeout(r, 5));
    emit(2);
    return 'ok';
  });
  const seen: number[] = [];
  for await (const e of run) seen.push(e);
  assert.deepEqual(seen, [1, 2]);
  assert.equal(await run, 'ok');
  const bad = new Run<number, string>(async () => {
    throw new Error('boom');
  });
  await assert.rejects(async () => {
    for await (const _ of bad) void _;
  }, /boom/);
  await assert.rejects(bad.done, /boom/);
});
