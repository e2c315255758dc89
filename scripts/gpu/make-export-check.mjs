// Writes .gpu/export-check/: a model trained by `tsdpo dpo` (full fine-tuning of a tiny Llama-style
// model with GQA), a LoRA adapter trained on top of it, and the sequence log-probs tsdpo computes
// for some rows with and without the adapter (expected.json). check_transformers.py, run where
// transformers and peft exist, loads both folders and compares. Run after `npm run build`.
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
const root = fileURLToPath(new URL('../../', import.meta.url));
const E = await import(join(root, 'dist/src/core/index.js'));
const { initEngine } = await import(join(root, 'dist/src/engine.js'));
const { initModel } = await import(join(root, 'dist/src/models/init.js'));
const { saveModel, loadModel } = await import(join(root, 'dist/src/models/load.js'));
const { loadAdapter } = await import(join(root, 'dist/src/models/lora.js'));
const { runDpo } = await import(join(root, 'dist/src/train/run.js'));
const { defaultsOf, COMMON_OPTIONS, DPO_OPTIONS } = await import(join(root, 'dist/src/train/config.js'));
const { sequenceLogps } = await import(join(root, 'dist/src/train/logps.js'));
const { tinyPreferences } = await import(join(root, 'dist/test/train/tiny.js'));

await initEngine({ device: 'cpu' });
const out = join(root, '.gpu/export-check'),
  work = join(root, '.gpu/export-work');
rmSync(out, { recursive: true, force: true });
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const base = join(work, 'base');
await saveModel(
  initModel(
    {
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
      vocab_size: 2048,
      hidden_size: 64,
      intermediate_size: 160,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 128,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: false,
      bos_token_id: 2047,
      eos_token_id: 2047,
      hidden_act: 'silu',
    },
    3,
  ),
  base,
);
for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(root, 'test/fixtures/demo', f), join(base, f));
const data = tinyPreferences(work, 16);
const cfg = (o) => ({
  ...defaultsOf({ ...COMMON_OPTIONS, ...DPO_OPTIONS }),
  device: 'cpu',
  dataset: data,
  max_steps: 5,
  per_device_train_batch_size: 4,
  learning_rate: 1e-2,
  save_steps: 0,
  logging_steps: 1,
  ...o,
});
await runDpo(cfg({ model_name_or_path: base, output_dir: join(out, 'model') }), { quiet: true, log: () => {} });
// The resumable checkpoint (optimizer state) is not part of the export and would weigh on the carry.
for (const d of readdirSync(join(out, 'model')))
  if (d.startsWith('checkpoint-')) rmSync(join(out, 'model', d), { recursive: true });
await runDpo(
  cfg({
    model_name_or_path: join(out, 'model'),
    output_dir: join(work, 'lora'),
    use_peft: true,
    lora_r: 4,
    lora_alpha: 8,
    lora_dropout: 0,
    lora_target_modules: ['q_proj', 'v_proj', 'down_proj'],
  }),
  { quiet: true, log: () => {} },
);
cpSync(join(work, 'lora'), join(out, 'adapter'), {
  recursive: true,
  filter: (p) => !/checkpoint-|metrics|trainer_state/.test(p),
});
const rows = [
  { input_ids: [5, 99, 300, 41, 2047], completion_mask: [0, 0, 1, 1, 1] },
  { input_ids: [7, 8, 9, 10, 11, 12, 13, 2047], completion_mask: [0, 0, 0, 1, 1, 1, 1, 1] },
];
const logps = async (model) => {
  const v = [];
  for (const r of rows) {
    const T = r.input_ids.length;
    v.push(
      (
        await E.tidy(
          () =>
            sequenceLogps(model, {
              rows: 1,
              T,
              inputIds: Int32Array.from(r.input_ids),
              attentionMask: new Int32Array(T).fill(1),
              completionMask: Float32Array.from(r.completion_mask),
            }).seq,
        ).toArray()
      )[0],
    );
  }
  return v;
};
const m = loadModel(join(out, 'model'));
const modelLogps = await logps(m);
loadAdapter(m, join(out, 'adapter'));
const adapterLogps = await logps(m);
writeFileSync(
  join(out, 'expected.json'),
  JSON.stringify({ rows, model_logps: modelLogps, adapter_logps: adapterLogps }, null, 1),
);
rmSync(work, { recursive: true, force: true });
console.log(JSON.stringify({ wrote: out, model_logps: modelLogps, adapter_logps: adapterLogps }));
process.exit(0);
