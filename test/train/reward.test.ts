// Reward-model pieces without Python: how rows become sequences (TRL 1.13 RewardTrainer's rules,
// token ids by hand from the toy character tokenizer), collation and pooling, and the new score
// head made from a causal LM folder (shape, seed, the saved folder's config). Numbers against TRL and
// transformers are test/reference/reward.test.ts's.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { collateReward, prepareRewardDataset } from '../../src/data/reward.js';
import { initEngine } from '../../src/engine.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadSequenceClassifier, saveSequenceClassifier } from '../../src/models/seqcls.js';
import { defaultsOf } from '../../src/train/config.js';
import { rewardConfig, REWARD_SPECS } from '../../src/train/reward-config.js';
import { rewardModel, runReward } from '../../src/train/run-reward.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { readMetrics } from '../../src/train/trainer.js';
import { tempDir, toyIds, toyTokenizer } from '../helpers/assets.js';
import { familyModel } from '../helpers/cli.js';

const EOS = 2,
  BOS = 1,
  PAD = 0;

before(async () => {
  await initEngine({ device: 'cpu' });
});

test('text rows: EOS appended unless present, the prompt in front, BOS where the tokenizer adds it', () => {
  const tok = toyTokenizer({ addBos: true });
  const d = prepareRewardDataset([{ prompt: 'ab', chosen: 'c', rejected: 'd</s>' }], tok);
  assert.deepEqual(d.examples[0], {
    chosenIds: [BOS, ...toyIds('abc'), EOS],
    rejectedIds: [BOS, ...toyIds('abd'), EOS],
    margin: null,
  });
  assert.equal(d.hasMargin, false);
  const implicit = prepareRewardDataset([{ chosen: 'xy', rejected: 'xz' }], tok); // the whole text
  assert.deepEqual(implicit.examples[0].chosenIds, [BOS, ...toyIds('xy'), EOS]);
  assert.throws(
    () =>
      prepareRewardDataset(
        [
          { prompt: 'a', chosen: 'b', rejected: 'c' },
          { chosen: 'b', rejected: 'c' },
        ],
        tok,
      ),
    /<memory> row index 1: field 'prompt': is missing/,
  );
});

test('conversational rows: prompt + completion messages through the chat template, no special tokens added', () => {
  const tok = toyTokenizer({
    addBos: true,
    template: "{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}|{% endfor %}",
  });
  const d = prepareRewardDataset(
    [
      {
        prompt: [{ role: 'user', content: 'hi' }],
        chosen: [{ role: 'assistant', content: 'yes' }],
        rejected: [{ role: 'assistant', content: 'no' }],
      },
    ],
    tok,
  );
  assert.deepEqual(d.examples[0].chosenIds, toyIds('u:hi|a:yes|'));
  assert.deepEqual(d.examples[0].rejectedIds, toyIds('u:hi|a:no|'));
});

test('max_length drops a row whose chosen or rejected sequence is longer (never truncates); margins are read', () => {
  const tok = toyTokenizer();
  const rows = [
    { chosen: 'abc', rejected: 'ab', margin: 0.5 },
    { chosen: 'a', rejected: 'abcd', margin: 1 },
    { chosen: 'ab', rejected: 'a', margin: -2 },
  ];
  const d = prepareRewardDataset(rows, tok, { maxLength: 4 });
  assert.equal(d.report.dropped, 1);
  assert.deepEqual(
    d.examples.map((e) => e.margin),
    [0.5, -2],
  );
  assert.deepEqual(d.examples[0].chosenIds, [...toyIds('abc'), EOS]);
  assert.throws(
    () =>
      prepareRewardDataset(
        [
          { chosen: 'a', rejected: 'b', margin: 1 },
          { chosen: 'a', rejected: 'b', margin: 'x' },
        ],
        tok,
      ),
    /<memory> row index 1: field 'margin': is a string; expected a finite number/,
  );
  assert.throws(
    () => prepareRewardDataset([{ chosen: 'a', rejected: 'b' }], toyTokenizer({ eos: false })),
    /no EOS token/,
  );
});

test('collation: chosen rows then rejected rows, right-padded; the score is read at the last non-pad token', () => {
  const b = collateReward(
    [
      { chosenIds: [5, 6, 2], rejectedIds: [5, 2], margin: 1 },
      { chosenIds: [7], rejectedIds: [8, 9, 2], margin: 0 },
    ],
    PAD,
  );
  assert.equal(b.T, 3);
  assert.deepEqual(Array.from(b.inputIds), [5, 6, 2, 7, 0, 0, 5, 2, 0, 8, 9, 2]);
  assert.deepEqual(Array.from(b.scoreAt), [2, 3, 7, 11]);
  assert.deepEqual(Array.from(b.margins!), [1, 0]);
  assert.equal(b.tokens, 9);
  // EOS as the pad token (TRL's fallback): transformers then reads the token before a trailing EOS.
  assert.deepEqual(
    Array.from(collateReward([{ chosenIds: [5, 6, 2], rejectedIds: [5, 2], margin: null }], 2).scoreAt),
    [1, 3],
  );
});

test('a causal LM folder gets a new one-label score head: [1, hidden], seeded, saved as LlamaForSequenceClassification without lm_head', async () => {
  const root = tempDir('tsdpo-seqcls-');
  const dir = familyModel('llama', join(root, 'llama'));
  const a = loadSequenceClassifier(dir, { newHead: { numLabels: 1, seed: 5 } });
  const b = loadSequenceClassifier(dir, { newHead: { numLabels: 1, seed: 5 } });
  const c = loadSequenceClassifier(dir, { newHead: { numLabels: 1, seed: 6 } });
  assert.deepEqual(a.score.shape, [1, a.model.hiddenSize]);
  assert.ok(a.newHead);
  const [wa, wb, wc] = await Promise.all([a.score.toArray(), b.score.toArray(), c.score.toArray()]);
  assert.deepEqual(Array.from(wa), Array.from(wb));
  assert.notDeepEqual(Array.from(wa), Array.from(wc));
  const std = Math.sqrt(Array.from(wa).reduce((s, x) => s + x * x, 0) / wa.length);
  assert.ok(std > 0.01 && std < 0.04, `std ${std} (initializer_range 0.02)`);
  assert.throws(
    () => loadSequenceClassifier(dir),
    /not a reward model: config.json architectures is \["LlamaForCausalLM"\]/,
  );
  const out = join(root, 'out');
  await saveSequenceClassifier(a, out, 0);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(config.architectures, ['LlamaForSequenceClassification']);
  assert.deepEqual(config.id2label, { 0: 'LABEL_0' });
  assert.equal(config.pad_token_id, 0);
  const names = [...readSafetensors(join(out, 'model.safetensors')).tensors.keys()];
  assert.ok(names.includes('score.weight') && !names.includes('lm_head.weight'));
  const again = loadSequenceClassifier(out);
  assert.equal(again.newHead, false);
  assert.deepEqual(Array.from(await again.score.toArray()), Array.from(wa));
});

test('a resumed reward run (full model, and LoRA + score head) logs the losses of an uninterrupted one; a two-label classifier is refused', async () => {
  const root = tempDir('tsdpo-reward-resume-');
  const model = familyModel('llama', join(root, 'llama'));
  const data = join(root, 'pairs.jsonl');
  writeFileSync(
    data,
    Array.from({ length: 8 }, (_, i) =>
      JSON.stringify({ prompt: `Review ${i}:`, chosen: ' good fun', rejected: i % 2 ? ' dull' : ' bad, slow' }),
    ).join('\n'),
  );
  const specs = defaultsOf(REWARD_SPECS);
  const cfg = (out: string, more: Partial<typeof specs> = {}) => ({
    ...rewardConfig({
      ...specs,
      model_name_or_path: model,
      dataset: data,
      max_steps: 6,
      save_steps: 3,
      logging_steps: 1,
      per_device_train_batch_size: 4,
      learning_rate: 1e-3,
      ...more,
    }),
    device: 'cpu' as const,
    output_dir: join(root, out),
  });
  const quiet = { quiet: true, log: () => {} };
  for (const lora of [{}, { use_peft: true, lora_r: 4 }]) {
    const full = cfg(`full-${Object.keys(lora).length}`, lora),
      resumed = cfg(`resumed-${Object.keys(lora).length}`, { ...lora, resume_from_checkpoint: true });
    await runReward(full, quiet);
    cpSync(join(full.output_dir, 'checkpoint-3'), join(resumed.output_dir, 'checkpoint-3'), { recursive: true });
    const said: string[] = [];
    await runReward(resumed, { quiet: true, log: (l) => said.push(l) });
    assert.ok(
      said.some((l) => l.startsWith('resuming from') && l.includes('step 3 of 6')),
      said.join('\n'),
    );
    const losses = (dir: string) =>
      readMetrics(dir)
        .filter((l) => 'loss' in l)
        .map((l) => [l.step, l.loss, l.accuracy]);
    const [a, b] = [losses(full.output_dir), losses(resumed.output_dir)];
    assert.equal(b.length, 6);
    a.forEach((l, i) =>
      l.forEach((v, k) =>
        assert.ok(Math.abs(v - b[i][k]) < 1e-6, `${JSON.stringify(lora)} step ${l[0]}: ${a[i]} vs ${b[i]}`),
      ),
    );
  }
  const two = join(root, 'two-labels');
  await saveSequenceClassifier(loadSequenceClassifier(model, { newHead: { numLabels: 2, seed: 0 } }), two, 0);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(model, f), join(two, f));
  await assert.rejects(
    runReward(cfg('two', { model_name_or_path: two }), quiet),
    /two-labels: score.weight has 2 labels; a reward model has one/,
  );
});

test('frozen_dtype bfloat16 keeps a LoRA reward model body in bf16 (the score head and adapters f32); full training ignores it', async () => {
  const root = tempDir('tsdpo-reward-bf16-');
  const model = familyModel('llama', join(root, 'llama'));
  const specs = defaultsOf(REWARD_SPECS);
  const tok = loadTokenizer(model);
  const dtypes = (lora: boolean, frozen: 'bfloat16' | 'float32') => {
    const cfg = rewardConfig({ ...specs, model_name_or_path: model, use_peft: lora, frozen_dtype: frozen });
    const parts = rewardModel(cfg, { tok, log: () => {}, frozenDtype: frozen === 'bfloat16' ? 'bf16' : 'f32' });
    const all = new Set([...parts.sc.model.params.values()].map((t) => t.dtype));
    const trained = new Set(parts.params.map((p) => p.tensor.dtype));
    return { all: [...all].sort(), trained: [...trained] };
  };
  assert.deepEqual(dtypes(true, 'bfloat16'), { all: ['bf16', 'f32'], trained: ['f32'] });
  assert.deepEqual(dtypes(true, 'float32'), { all: ['f32'], trained: ['f32'] });
  assert.deepEqual(dtypes(false, 'bfloat16'), { all: ['f32'], trained: ['f32'] });
});
