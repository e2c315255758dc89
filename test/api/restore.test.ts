// Checkpoint restore (what --resume does) sits beside loading and makes its checks: a model folder
// or an adapter that does not fit the run is an error naming the tensor or module and both shapes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { initEngine } from '../../src/engine.js';
import { loadModel, restoreModel, saveModel } from '../../src/models/load.js';
import { newAdapter, restoreAdapter, saveAdapter } from '../../src/models/lora.js';
import { tempDir } from '../helpers/assets.js';
import { DEMO_MODEL, FAMILY_FIXTURES } from '../helpers/cli.js';

await initEngine({ device: 'cpu', log: () => {} });

test('restoreModel writes a saved model back in place and refuses one of other shapes, naming the tensor', async () => {
  const dir = join(tempDir(), 'ck');
  const a = loadModel(DEMO_MODEL);
  const w = a.params.get('transformer.h.0.mlp.c_fc.weight')!;
  w.backend.write(w.storage, new Float32Array(w.size).fill(0.25));
  await saveModel(a, dir);
  const b = loadModel(DEMO_MODEL);
  restoreModel(b, dir);
  assert.deepEqual(await b.params.get('transformer.h.0.mlp.c_fc.weight')!.toArray(), await w.toArray());
  const tiny = loadModel(join(FAMILY_FIXTURES, 'gpt2/policy'));
  assert.throws(
    () => restoreModel(tiny, dir),
    new RegExp(
      /ck: weights do not match the model:\n[^]*/.source +
        /tensor 'transformer\.h\.0\.attn\.c_attn\.weight' has shape \[192, 576\], the model's is \[64, 192\]/.source,
    ),
  );
});

test('restoreAdapter refuses an adapter of another rank or other modules, naming the module', async () => {
  const dir = join(tempDir(), 'ad');
  const a = loadModel(DEMO_MODEL);
  newAdapter(a, { r: 2, alpha: 4 });
  await saveAdapter(a, dir, DEMO_MODEL);
  const same = loadModel(DEMO_MODEL);
  newAdapter(same, { r: 2, alpha: 4, seed: 9 });
  restoreAdapter(same, dir);
  const wider = loadModel(DEMO_MODEL);
  newAdapter(wider, { r: 4, alpha: 4 });
  assert.throws(
    () => restoreAdapter(wider, dir),
    new RegExp(
      /ad: checkpoint adapter does not match this run:\n {2}transformer\.h\.0\.attn\.c_attn: /.source +
        /lora_A \[2, 192\] \/ lora_B \[576, 2\], the run's are \[4, 192\] \/ \[576, 4\]/.source,
    ),
  );
  const more = loadModel(DEMO_MODEL);
  newAdapter(more, { r: 2, alpha: 4, targetModules: ['c_attn', 'c_proj'] });
  assert.throws(
    () => restoreAdapter(more, dir),
    /adapter lacks transformer\.h\.0\.attn\.c_proj, which this run trains/,
  );
});
