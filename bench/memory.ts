// Memory benchmark of a DPO run at a Qwen2.5-0.5B-like shape (random weights, bf16 checkpoint from
// bench/make_qwen_like.py): peak RSS and seconds per step of `tsdpo dpo`, with and without
// gradient_checkpointing / precompute_ref_log_probs, of another tsdpo checkout (--base, e.g. the
// code before a change) and of TRL 1.13 from the reference venv (scripts/reference/trl_run.py) on
// the same config. Each run is its own process, measured by /usr/bin/time (maximum RSS).
//
//   .venv-ref/bin/python bench/make_qwen_like.py --out /tmp/qwen24 --layers 24
//   npm run bench:memory -- --model /tmp/qwen24 --lora [--base ../other-checkout] [--steps 2] [--no-trl]
//   npm run bench:memory -- --model /tmp/qwen4 [--base ...]        full fine-tuning
//   --only 'tsdpo|TRL 1.13' runs the sides of those labels only; --frozen adds a side with frozen_dtype bfloat16
//   npm run bench:memory -- --model /tmp/qwen24 --load-only [--frozen]   loading only, in this process
//     (bench/memory-load.ts): one JSON line of RSS, peak RSS and live bytes after each loading stage
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const flag = (name: string): boolean => argv.includes(`--${name}`);

interface Side {
  label: string;
  cmd: string[];
  cfg: Record<string, unknown>;
  trl?: boolean;
}
interface Result {
  label: string;
  rss_gib: number | null;
  sec_per_step: number | null;
  steps: number;
  note: string;
}

const model = arg('model', '');
if (!model || !existsSync(join(model, 'config.json'))) {
  console.error('bench:memory: --model DIR (a folder from bench/make_qwen_like.py) is required');
  process.exit(2);
}
if (flag('load-only')) {
  await (await import('./memory-load.js')).loadOnly(resolve(model), flag('frozen'));
  process.exit(0);
}
const lora = flag('lora');
const steps = Number(arg('steps', '2'));
const only = arg('only', '');
const tmp = mkdtempSync(join(tmpdir(), 'tsdpo-bench-memory-'));
const base: Record<string, unknown> = {
  model_name_or_path: resolve(model),
  dataset: join(resolve(model), 'prefs.jsonl'),
  max_steps: steps,
  per_device_train_batch_size: Number(arg('pairs', '2')),
  max_length: Number(arg('max_length', '256')),
  logging_steps: 1,
  save_steps: 0,
  learning_rate: 1e-6,
  use_peft: lora,
  seed: 42,
  lr_scheduler_type: 'constant',
};
const tsdpo = (root: string): string[] => ['node', join(root, 'bin/tsdpo.js'), 'dpo'];
const sides: Side[] = [];
const other = arg('base', '');
if (other) sides.push({ label: 'base', cmd: tsdpo(resolve(other)), cfg: { ...base, device: 'cpu' } });
sides.push({ label: 'tsdpo', cmd: tsdpo(ROOT), cfg: { ...base, device: 'cpu', memory_report: true } });
sides.push({
  label: 'tsdpo gradient_checkpointing',
  cmd: tsdpo(ROOT),
  cfg: { ...base, device: 'cpu', memory_report: true, gradient_checkpointing: true },
});
if (flag('frozen'))
  sides.push({
    label: 'tsdpo gradient_checkpointing frozen_dtype bfloat16',
    cmd: tsdpo(ROOT),
    cfg: { ...base, device: 'cpu', memory_report: true, gradient_checkpointing: true, frozen_dtype: 'bfloat16' },
  });
if (!lora)
  sides.push({
    label: 'tsdpo gradient_checkpointing precompute_ref_log_probs',
    cmd: tsdpo(ROOT),
    cfg: { ...base, device: 'cpu', memory_report: true, gradient_checkpointing: true, precompute_ref_log_probs: true },
  });
const python = join(ROOT, '.venv-ref/bin/python');
if (!flag('no-trl') && existsSync(python)) {
  for (const gc of [false, true])
    sides.push({
      label: `TRL 1.13${gc ? ' gradient_checkpointing' : ''}`,
      cmd: [python, join(ROOT, 'scripts/reference/trl_run.py'), '--trainer', 'dpo'],
      cfg: { ...base, gradient_checkpointing: gc },
      trl: true,
    });
}

function run(s: Side, i: number): Result {
  const out = join(tmp, `run${i}`);
  const cfgFile = join(tmp, `cfg${i}.json`);
  writeFileSync(
    cfgFile,
    JSON.stringify({ ...s.cfg, ...(s.trl ? {} : { output_dir: out, overwrite_output_dir: true }) }),
  );
  const log = join(tmp, `log${i}.jsonl`);
  const args = s.trl ? [...s.cmd, '--config', cfgFile, '--out', log] : [...s.cmd, '--config', cfgFile];
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %M %e', ...args], {
    encoding: 'utf8',
    env: { ...process.env, TSDPO_CACHE_DIR: join(tmp, 'cache') },
    maxBuffer: 1 << 26,
  });
  const time = /TIME (\d+) ([\d.]+)/.exec(r.stderr ?? '');
  const rss = time ? Number(time[1]) / 2 ** 20 : null;
  const memLines = (r.stderr ?? '').split('\n').filter((l) => l.startsWith('memory ('));
  let sec: number | null = null,
    done = 0;
  try {
    const lines = readFileSync(s.trl ? log : join(out, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const summary = lines.find((l) => 'train_runtime' in l);
    done = lines.filter((l) => 'loss' in l).length;
    if (summary && done > 0) sec = summary.train_runtime / done;
  } catch {
    /* failed before writing metrics */
  }
  // The run's folder holds GiBs (the model and a checkpoint with the optimizer state): gone before
  // the next side, so that it neither fills the disk nor leaves the next run a page cache to evict.
  rmSync(out, { recursive: true, force: true });
  const err = (r.stderr ?? '')
    .split('\n')
    .filter((l) => /out of memory|Error/.test(l))
    .slice(0, 1)
    .join(' ');
  return {
    label: s.label,
    rss_gib: rss,
    sec_per_step: sec,
    steps: done,
    note: r.status === 0 ? (memLines.at(-1) ?? '') : `exit ${r.status}: ${err.slice(0, 300)}`,
  };
}

const cfgText = readFileSync(join(model, 'config.json'), 'utf8');
const { num_hidden_layers: layers, hidden_size: hidden } = JSON.parse(cfgText);
const shape =
  ({ 896: 'Qwen2.5-0.5B', 1536: 'Qwen2.5-1.5B', 2048: 'Qwen2.5-3B' } as Record<number, string>)[hidden] ??
  `hidden ${hidden}`;
console.log(
  `# DPO ${lora ? 'LoRA' : 'full'}: ${shape} shape with ${layers} layers, ${base.per_device_train_batch_size} ` +
    `pairs x max_length ${base.max_length}, ${steps} steps${other ? `; base = ${other}` : ''}`,
);
sides.forEach((s, i) => {
  if (only && !only.split('|').some((o) => s.label === o)) return;
  const r = run(s, i);
  console.log(JSON.stringify(r));
});
rmSync(tmp, { recursive: true, force: true });
