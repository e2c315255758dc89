// The browser example's Web Worker: DPO on the demo model, fetched from the page's server, through
// the library's browser entry (`import ... from 'tsdpo'` resolves to it in a bundler).
import { initEngine, modelFromFiles, pairLogprobs, tokenizerFromFiles, train } from 'tsdpo';

self.onmessage = async ({ data: { modelUrl, threads } }) => {
  try {
    await initEngine({ device: 'cpu', threads, log: (message) => postMessage({ type: 'log', message }) });
    const names = [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
    ];
    const files = Object.fromEntries(
      await Promise.all(names.map(async (n) => [n, await (await fetch(new URL(n, modelUrl))).arrayBuffer()])),
    );
    const model = await modelFromFiles(files, { label: modelUrl }),
      tokenizer = await tokenizerFromFiles(files);
    const pairs = [
      ['The movie was', ' a joy to watch.', ' a waste of time.'],
      ['I found the plot', ' clever and moving.', ' dull and silly.'],
      ['The acting is', ' superb.', ' terrible.'],
      ['Overall this film', ' is a delight.', ' is a mess.'],
    ].map(([prompt, chosen, rejected]) => ({ prompt, chosen, rejected }));
    const margin = async () =>
      (await pairLogprobs(model, tokenizer, pairs)).map((p) => p.chosen_logp - p.rejected_logp);
    const before = await margin();
    const run = train('dpo', {
      model,
      tokenizer,
      train: pairs,
      config: { beta: 0.1, learning_rate: 1e-4, max_steps: 8, per_device_train_batch_size: 4, logging_steps: 4 },
    });
    for await (const e of run) postMessage(e); // log, step and metrics events, as they come
    postMessage({ type: 'done', steps: (await run).steps, before, after: await margin() });
  } catch (e) {
    postMessage({ type: 'error', message: String(e?.stack ?? e) });
  }
};
