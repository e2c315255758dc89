// Timing shared by the kernel benchmarks.

/** Best and median seconds of `runs` calls after `warmup` calls. */
export function time(fn: () => void, warmup: number, runs: number): { best: number; median: number } {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  t.sort((x, y) => x - y);
  return { best: t[0], median: t[t.length >> 1] };
}
