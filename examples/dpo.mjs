// DPO on the demo model from Node, through the library: `node examples/dpo.mjs` (after npm ci).
import { initEngine, loadModel, loadTokenizer, pairLogprobs, train } from 'tsdpo';

await initEngine({ device: process.env.TSDPO_DEVICE ?? 'auto' });
const model = loadModel('assets/demo-model'),
  tokenizer = loadTokenizer('assets/demo-model');
const pairs = [
  ['The movie was', ' a joy to watch.', ' a waste of time.'],
  ['I found the plot', ' clever and moving.', ' dull and silly.'],
  ['The acting is', ' superb.', ' terrible.'],
  ['Overall this film', ' is a delight.', ' is a mess.'],
].map(([prompt, chosen, rejected]) => ({ prompt, chosen, rejected }));
const margin = async () => (await pairLogprobs(model, tokenizer, pairs)).map((p) => p.chosen_logp - p.rejected_logp);
const before = await margin();

const run = train('dpo', {
  model,
  tokenizer,
  train: pairs,
  config: { beta: 0.1, learning_rate: 1e-4, max_steps: 8, per_device_train_batch_size: 4, logging_steps: 4 },
});
for await (const e of run)
  if (e.type === 'metrics' && 'loss' in e.metrics)
    console.log(
      `step ${e.metrics.step}: loss ${e.metrics.loss.toFixed(4)}, rewards/margins ${e.metrics['rewards/margins'].toFixed(4)}`,
    );

const after = await margin();
console.log(JSON.stringify({ steps: (await run).steps, before, after }));
