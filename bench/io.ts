// Checkpoint I/O speed and memory: writes a synthetic bf16 checkpoint of SIZE_MB (default 1024)
// in tensors of 64 MiB, reads it eagerly and lazily, converts to float32. One JSON line per step.
// Usage: node dist/bench/io.js [SIZE_MB]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';

const sizeMb = Number(process.argv[2] ?? 1024);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsdpo-bench-io-'));
const file = path.join(dir, 'model.safetensors');
const perTensor = 32 << 20; // bf16 values per tensor: 64 MiB
const count = Math.max(1, Math.round((sizeMb * 2 ** 20) / (2 * perTensor)));
const mb = (n: number) => Math.round(n / 2 ** 20);

function step(name: string, bytes: number, fn: () => void): void {
  const t0 = performance.now();
  fn();
  const s = (performance.now() - t0) / 1000;
  const m = process.memoryUsage();
  console.log(
    JSON.stringify({
      bench: 'io',
      step: name,
      file_mb: mb(fs.statSync(file).size),
      seconds: +s.toFixed(3),
      mb_per_s: Math.round(mb(bytes) / s),
      rss_mb: mb(m.rss),
      array_buffers_mb: mb(m.arrayBuffers),
    }),
  );
}

try {
  const source = new Float32Array(perTensor).map((_, i) => Math.sin(i));
  const tensors: TensorToWrite[] = Array.from({ length: count }, (_, i) => ({
    name: `layers.${i}.weight`,
    dtype: 'BF16',
    shape: [perTensor / 4096, 4096],
    data: source,
  }));
  fs.writeFileSync(file, '');
  step('write_bf16_from_f32', count * perTensor * 2, () => writeSafetensors(file, tensors));
  let total = 0;
  step('read_eager', count * perTensor * 2, () => {
    total = readSafetensors(file).tensors.size;
  });
  if (total !== count) throw new Error('bench: wrong tensor count');
  step('read_lazy_to_f32_one_at_a_time', count * perTensor * 2, () => {
    for (const t of readSafetensors(file, { lazy: true }).tensors.values()) t.toFloat32();
  });
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
