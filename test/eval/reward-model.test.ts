// Reward models (*ForSequenceClassification) against transformers' numbers: a classifier whose
// score rows are rows of the fixture model's LM head scores exactly that model's logits at the
// pooled position, so the fixture's logits (transformers 5.17) give the expected scores. Pooling as
// in transformers: the last token that is not config.pad_token_id. Then `tsdpo eval` with one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { loadRewardModel, pooledIndex, rewardModelJudge, scoreSequences } from '../../src/eval/reward-model.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { FIXTURES, fixture, relError } from '../models/fixtures.js';
import { tempRoot } from '../train/tiny.js';

const BIN = fileURLToPath(new URL('../../../bin/tsdpo.js', import.meta.url));
const DEMO_MODEL = fileURLToPath(new URL('../../../assets/demo-model', import.meta.url));
let root = '';

before(async () => {
  await initEngine({ device: 'cpu' });
  root = tempRoot();
});

/** A *ForSequenceClassification folder from a causal LM folder: score = rows `labels` of its LM head. */
function classifierFrom(
  src: string,
  dst: string,
  arch: string,
  labels: number[],
  extra: Record<string, unknown> = {},
): void {
  mkdirSync(dst, { recursive: true });
  const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  const st = readSafetensors(join(src, 'model.safetensors'));
  const tensors = new Map(
    [...st.tensors].map(([name, t]) => [name, { name, dtype: 'F32' as const, shape: t.shape, data: t.toFloat32() }]),
  );
  const headName = tensors.has('lm_head.weight')
    ? 'lm_head.weight'
    : tensors.has('transformer.wte.weight')
      ? 'transformer.wte.weight'
      : 'model.embed_tokens.weight';
  const head = tensors.get(headName)!,
    C = head.shape[1];
  const score = new Float32Array(labels.length * C);
  labels.forEach((v, i) => score.set(head.data.subarray(v * C, (v + 1) * C), i * C));
  tensors.delete('lm_head.weight'); // transformers' classifiers have no LM head
  tensors.set('score.weight', { name: 'score.weight', dtype: 'F32', shape: [labels.length, C], data: score });
  writeSafetensors(join(dst, 'model.safetensors'), tensors);
  writeFileSync(
    join(dst, 'config.json'),
    JSON.stringify({
      ...config,
      architectures: [arch],
      id2label: Object.fromEntries(labels.map((_, i) => [String(i), `LABEL_${i}`])),
      ...extra,
    }),
  );
}

for (const [arch, cls] of [
  ['gpt2', 'GPT2ForSequenceClassification'],
  ['llama', 'LlamaForSequenceClassification'],
] as const) {
  test(`reward model (${cls}): scores equal transformers' logits at the last non-pad token`, async () => {
    const labels = [7, 300];
    const dir = join(root, `rm-${arch}`);
    classifierFrom(join(FIXTURES, arch, 'policy'), dir, cls, labels, { pad_token_id: 0 });
    const rm = loadRewardModel(dir);
    assert.equal(rm.padTokenId, 0);
    const fx = fixture(arch);
    const ids = fx.tensors.get('input_ids')!.i32(),
      mask = fx.tensors.get('attention_mask')!.i32();
    const [R, T] = fx.tensors.get('input_ids')!.shape;
    const V = fx.tensors.get('policy.logits')!.shape[2],
      logits = fx.tensors.get('policy.logits')!.f32;
    const rows = Array.from({ length: R }, (_, r) =>
      Array.from(ids.subarray(r * T, r * T + mask.subarray(r * T, (r + 1) * T).reduce((a, b) => a + b, 0))),
    );
    const expectAt = (pos: (row: number[]) => number) =>
      rows.flatMap((row, r) => labels.map((v) => logits[(r * T + pos(row)) * V + v]));
    // Unpadded rows, and the same rows padded with pad_token_id in one batch: the same scores.
    for (const batch of [1, 4]) {
      const got = (await scoreSequences(rm, rows, batch)).flatMap((x) => [...x]);
      const err = relError(
        got,
        expectAt((row) => row.length - 1),
      );
      assert.ok(err < 1e-4, `${arch} batch ${batch}: relative error ${err}`);
    }
    // pad_token_id = the rows' final EOS (2): transformers then reads the token before it.
    rm.padTokenId = 2;
    const got = (await scoreSequences(rm, rows)).flatMap((x) => [...x]);
    assert.ok(
      relError(
        got,
        expectAt((row) => row.length - 2),
      ) < 1e-4,
    );
  });
}

test('pooledIndex: the last token that is not pad (0 if none); the last token without a pad id', () => {
  assert.equal(pooledIndex([5, 6, 0, 0], 0), 1);
  assert.equal(pooledIndex([0, 0], 0), 0);
  assert.equal(pooledIndex([5, 6, 0], null), 2);
  assert.equal(pooledIndex([5, 0, 6], 0), 2);
});

test('reward model errors: not a classifier, a bias, a label to choose', () => {
  const plain = join(FIXTURES, 'gpt2', 'policy');
  assert.throws(
    () => loadRewardModel(plain),
    /not a reward model: config\.json architectures is \["GPT2LMHeadModel"\]/,
  );
  const two = join(root, 'rm-two');
  classifierFrom(DEMO_MODEL, two, 'GPT2ForSequenceClassification', [1, 2]);
  copyFileSync(join(DEMO_MODEL, 'tokenizer.json'), join(two, 'tokenizer.json'));
  copyFileSync(join(DEMO_MODEL, 'tokenizer_config.json'), join(two, 'tokenizer_config.json'));
  const rm = loadRewardModel(two);
  assert.throws(() => rewardModelJudge(rm), /has 2 labels \(LABEL_0, LABEL_1\): choose one with --reward_label/);
  assert.throws(() => rewardModelJudge(rm, 'LABEL_9'), /not one of 0 \(LABEL_0\), 1 \(LABEL_1\)/);
});

test("tsdpo eval --reward <reward model folder>: a classifier's label probability judges", async () => {
  const dir = join(root, 'rm-demo');
  classifierFrom(DEMO_MODEL, dir, 'GPT2ForSequenceClassification', [11, 12], { pad_token_id: 2047 });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(DEMO_MODEL, f), join(dir, f));
  const prompts = join(root, 'p.txt'),
    samples = join(root, 'rm-samples.jsonl');
  writeFileSync(prompts, 'The movie was\nThe plot\n');
  const r = spawnSync(
    process.execPath,
    [
      BIN,
      'eval',
      '--device',
      'cpu',
      '--json',
      '--model',
      DEMO_MODEL,
      '--reference',
      DEMO_MODEL,
      '--prompts',
      prompts,
      '--reward',
      dir,
      '--reward_label',
      'LABEL_1',
      '--samples',
      '2',
      '--max_new_tokens',
      '5',
      '--output',
      samples,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.win_rate, 0.5);
  // Every sample's reward is the classifier's probability of label 1 for prompt + completion.
  const judge = rewardModelJudge(loadRewardModel(dir), '1');
  for (const line of readFileSync(samples, 'utf8').trim().split('\n')) {
    const x = JSON.parse(line) as { prompt: string; completion: string; reward: number };
    assert.ok(x.reward > 0 && x.reward < 1);
    assert.ok(Math.abs(x.reward - (await judge(x.prompt, x.completion))) < 1e-6);
  }
});
