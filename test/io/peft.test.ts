// PEFT LoRA adapters: the fixture saved by peft, PEFT's target-module rules, scaling variants,
// save/load round trips and the variants tsdpo refuses.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { loadHfFolder } from '../../src/io/hf.js';
import { isLoraTarget, loraScaling, matchesTarget, parseLoraConfig } from '../../src/io/peft-config.js';
import { checkAdapterAgainstBase, loadPeftAdapter, savePeftAdapter } from '../../src/io/peft.js';
import { bits, FIXTURES, splitFile, tempDir, tensorBytes } from './helpers.js';

const LORA = path.join(FIXTURES, 'llama/lora');
const MODULES = [
  'model.layers.0.self_attn.q_proj',
  'model.layers.0.self_attn.v_proj',
  'model.layers.1.self_attn.q_proj',
  'model.layers.1.self_attn.v_proj',
];

test('loads the peft fixture: config, scaling 2.0, factors by module path with their shapes and values', () => {
  const a = loadPeftAdapter(LORA);
  assert.equal(a.scaling, 2.0);
  assert.equal(a.config.r, 4);
  assert.equal(a.config.lora_alpha, 8);
  assert.deepEqual(a.config.target_modules, ['q_proj', 'v_proj']);
  assert.equal(a.config.base_model_name_or_path, '../policy');
  assert.equal(a.config.peft_type, 'LORA');
  assert.equal(a.rawConfig.peft_version, '0.21.0');
  assert.deepEqual([...a.modules.keys()], MODULES);
  const raw = splitFile(fs.readFileSync(path.join(LORA, 'adapter_model.safetensors')));
  for (const m of a.modules.values()) {
    assert.deepEqual(m.A.shape, [4, 64]);
    assert.deepEqual(m.B.shape, [m.path.endsWith('q_proj') ? 64 : 32, 4]);
    assert.equal(m.scaling, 2.0);
    const key = `base_model.model.${m.path}.lora_`;
    assert.deepEqual(new Uint8Array(m.A.toFloat32().buffer), tensorBytes(raw, `${key}A.weight`));
    assert.deepEqual(new Uint8Array(m.B.toFloat32().buffer), tensorBytes(raw, `${key}B.weight`));
  }
  assert.equal(a.extraTensors.size, 0);
  checkAdapterAgainstBase(a, loadHfFolder(path.join(FIXTURES, 'llama/policy')).tensors);
  // mistral has 1 KV head: v_proj is [16, 64], not the [32, 64] this adapter was made for
  assert.throws(
    () => checkAdapterAgainstBase(a, loadHfFolder(path.join(FIXTURES, 'mistral/policy')).tensors),
    /model.layers.0.self_attn.v_proj.weight is \[16, 64\] but the adapter's B A is \[32, 64\]/,
  );
  assert.throws(
    () => checkAdapterAgainstBase(a, loadHfFolder(path.join(FIXTURES, 'gpt2/policy')).tensors),
    /the base model has no model.layers.0.self_attn.q_proj.weight/,
  );
});

test("matchesTarget follows PEFT: list entries match the name or a '.name' suffix, a string is a full regex", () => {
  const q = 'model.layers.0.self_attn.q_proj';
  assert.ok(matchesTarget(q, ['q_proj', 'v_proj']));
  assert.ok(matchesTarget(q, ['self_attn.q_proj']));
  assert.ok(matchesTarget(q, [q]));
  assert.ok(!matchesTarget(q, ['proj']), 'a suffix must start at a dot');
  assert.ok(!matchesTarget('model.layers.0.self_attn.xq_proj', ['q_proj']));
  assert.ok(!matchesTarget('model.layers.0.self_attn.q_proj.lora', ['q_proj']));
  assert.ok(matchesTarget('lm_head', ['lm_head']));
  assert.ok(matchesTarget(q, '.*\\.(q|v)_proj'));
  assert.ok(!matchesTarget('model.layers.0.self_attn.k_proj', '.*\\.(q|v)_proj'));
  assert.ok(!matchesTarget(q, 'q_proj'), 'a regex string must match the whole path (re.fullmatch)');
  assert.ok(!matchesTarget(q, 'model|q_proj'), 'alternatives do not escape the full match');
  assert.ok(matchesTarget(q, 'model\\.layers\\.0\\..*'));
  assert.ok(matchesTarget('transformer.h.0.mlp.c_fc', 'all-linear'));
  assert.ok(!matchesTarget('lm_head', 'ALL-LINEAR'));
  assert.throws(
    () => matchesTarget(q, '(?P<x>q)_proj'),
    /target_modules "\(\?P<x>q\)_proj" is not a regex JavaScript can run/,
  );
});

test(
  'isLoraTarget and loraScaling: layers_to_transform, ' +
    'exclude_modules, modules_to_save, rank/alpha patterns, rslora',
  () => {
    const base = { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] };
    const cfg = (extra: object) => parseLoraConfig({ ...base, ...extra }, 'test');
    const q0 = 'model.layers.0.self_attn.q_proj',
      q1 = 'model.layers.1.self_attn.q_proj',
      v1 = 'model.layers.1.self_attn.v_proj';
    assert.ok(!isLoraTarget(q0, cfg({ layers_to_transform: [1] })));
    assert.ok(isLoraTarget(q1, cfg({ layers_to_transform: [1] })));
    assert.ok(isLoraTarget(q1, cfg({ layers_to_transform: 1, layers_pattern: 'layers' })));
    assert.ok(!isLoraTarget(q1, cfg({ layers_to_transform: 1, layers_pattern: 'h' })));
    assert.ok(!isLoraTarget(v1, cfg({ exclude_modules: ['model.layers.1.self_attn.v_proj'] })));
    assert.ok(!isLoraTarget(v1, cfg({ exclude_modules: '.*layers\\.1.*' })));
    assert.ok(isLoraTarget(q0, cfg({ exclude_modules: '.*layers\\.1.*' })));
    assert.ok(
      !isLoraTarget(
        'lm_head',
        parseLoraConfig({ ...base, target_modules: ['lm_head'], modules_to_save: ['lm_head'] }, 't'),
      ),
    );
    assert.deepEqual(loraScaling(cfg({})), { r: 8, alpha: 16, scaling: 2 });
    assert.deepEqual(loraScaling(cfg({ use_rslora: true })), { r: 8, alpha: 16, scaling: 16 / Math.sqrt(8) });
    const patterned = cfg({ rank_pattern: { 'layers.1.self_attn.q_proj': 4 }, alpha_pattern: { v_proj: 4 } });
    assert.deepEqual(loraScaling(patterned, q1), { r: 4, alpha: 16, scaling: 4 });
    assert.deepEqual(loraScaling(patterned, q0), { r: 8, alpha: 16, scaling: 2 });
    assert.deepEqual(loraScaling(patterned, v1), { r: 8, alpha: 4, scaling: 0.5 });
    assert.deepEqual(
      loraScaling(patterned, 'model.layers.11.self_attn.q_proj'),
      { r: 8, alpha: 16, scaling: 2 },
      'pattern keys match at a dot',
    );
  },
);

test('unsupported adapters are refused with the reason', (t) => {
  const dir = tempDir(t);
  const variant = (name: string, edit: Record<string, unknown>) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    const config = JSON.parse(fs.readFileSync(path.join(LORA, 'adapter_config.json'), 'utf8'));
    fs.writeFileSync(path.join(d, 'adapter_config.json'), JSON.stringify({ ...config, ...edit }));
    fs.copyFileSync(path.join(LORA, 'adapter_model.safetensors'), path.join(d, 'adapter_model.safetensors'));
    return d;
  };
  assert.throws(() => loadPeftAdapter(variant('dora', { use_dora: true })), /DoRA \(use_dora: true\) is not supported/);
  assert.throws(
    () => loadPeftAdapter(variant('ia3', { peft_type: 'IA3' })),
    /peft_type is "IA3"; only LORA adapters are supported/,
  );
  assert.throws(() => loadPeftAdapter(variant('bias', { bias: 'all' })), /bias "all" is not supported; only 'none'/);
  assert.throws(
    () => loadPeftAdapter(variant('lora-bias', { lora_bias: true })),
    /a bias on lora_B \(lora_bias: true\) is not supported/,
  );
  assert.throws(
    () => loadPeftAdapter(variant('only-q', { target_modules: ['q_proj'] })),
    new RegExp(
      /has LoRA factors for model.layers.0.self_attn.v_proj, /.source +
        /which the config's target_modules \["q_proj"\] does not select/.source,
    ),
  );
  assert.throws(
    () => loadPeftAdapter(variant('rank', { r: 8 })),
    /lora_A \[4, 64\] and lora_B \[64, 4\]; expected \[r, in\] and \[out, r\] with r = 8/,
  );
  assert.throws(() => loadPeftAdapter(variant('r0', { r: 0 })), /r must be a positive integer, got 0/);
  assert.throws(
    () => loadPeftAdapter(path.join(FIXTURES, 'llama/policy')),
    /no adapter_config.json in .* \(it has config.json: a full model\? use loadHfFolder\)/,
  );
  const d = variant('bin', {});
  fs.renameSync(path.join(d, 'adapter_model.safetensors'), path.join(d, 'adapter_model.bin'));
  assert.throws(() => loadPeftAdapter(d), /it has adapter_model.bin, but only safetensors is supported/);
});

test('save/load round trip: the fixture is rewritten byte for byte, modules_to_save keep their names', (t) => {
  const dir = tempDir(t);
  const a = loadPeftAdapter(LORA);
  const out = path.join(dir, 'copy');
  savePeftAdapter(out, { config: a.config, extraConfig: a.rawConfig, modules: a.modules });
  assert.deepEqual(
    fs.readFileSync(path.join(out, 'adapter_model.safetensors')),
    fs.readFileSync(path.join(LORA, 'adapter_model.safetensors')),
  );
  assert.deepEqual(
    JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')),
    JSON.parse(fs.readFileSync(path.join(LORA, 'adapter_config.json'), 'utf8')),
  );

  // a new adapter with rslora, a rank pattern and a saved lm_head
  const lmHead = new Float32Array(512 * 64).map((_, i) => Math.sin(i));
  const modules = new Map<
    string,
    { A: { shape: number[]; data: Float32Array }; B: { shape: number[]; data: Float32Array } }
  >();
  for (const p of MODULES) {
    const r = p.includes('layers.1.self_attn.q_proj') ? 2 : 4,
      out = p.endsWith('q_proj') ? 64 : 32;
    modules.set(p, {
      A: { shape: [r, 64], data: new Float32Array(r * 64).map((_, i) => i / 7) },
      B: { shape: [out, r], data: new Float32Array(out * r).map((_, i) => -i / 3) },
    });
  }
  const second = path.join(dir, 'new');
  savePeftAdapter(second, {
    config: {
      r: 4,
      lora_alpha: 8,
      target_modules: '.*\\.(q|v)_proj',
      use_rslora: true,
      rank_pattern: { 'layers.1.self_attn.q_proj': 2 },
      modules_to_save: ['lm_head'],
    },
    modules,
    extraTensors: new Map([['lm_head.weight', { shape: [512, 64], data: lmHead }]]),
  });
  const raw = splitFile(fs.readFileSync(path.join(second, 'adapter_model.safetensors')));
  assert.ok('base_model.model.lm_head.weight' in raw.header);
  assert.ok('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight' in raw.header);
  const cfg = JSON.parse(fs.readFileSync(path.join(second, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.task_type, 'CAUSAL_LM');
  assert.equal(cfg.use_dora, false);
  const b = loadPeftAdapter(second);
  assert.equal(b.scaling, 8 / 2);
  assert.equal(b.modules.get('model.layers.1.self_attn.q_proj')!.scaling, 8 / Math.sqrt(2));
  assert.deepEqual(b.modules.get('model.layers.1.self_attn.q_proj')!.A.shape, [2, 64]);
  for (const [p, m] of modules) {
    assert.deepEqual(bits(b.modules.get(p)!.A.toFloat32()), bits(m.A.data));
    assert.deepEqual(bits(b.modules.get(p)!.B.toFloat32()), bits(m.B.data));
  }
  assert.deepEqual(bits(b.extraTensors.get('lm_head.weight')!.toFloat32()), bits(lmHead));
  assert.deepEqual([...b.modules.keys()], MODULES);

  // the writer refuses factors whose rank disagrees with the config
  assert.throws(
    () =>
      savePeftAdapter(path.join(dir, 'bad'), {
        config: { r: 8, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
        modules: a.modules,
      }),
    /savePeftAdapter: .*expected \[r, in\] and \[out, r\] with r = 8/,
  );
  assert.ok(!fs.existsSync(path.join(dir, 'bad')));
});
