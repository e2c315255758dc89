// Learning-rate schedules with Hugging Face Trainer's semantics (get_scheduler): the multiplier
// for optimizer step k (0-based); warmup rises linearly from 0, so step 0 runs at lr 0 when
// warming up, exactly as transformers does.
export type ScheduleName = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine' | 'cosine_with_min_lr';
export const SCHEDULES: ScheduleName[] = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_min_lr'];

/**
 * minLrRate: the floor of 'cosine_with_min_lr' as a fraction of the peak (transformers'
 * lr_scheduler_kwargs min_lr_rate): after warmup the multiplier is min_lr_rate + (1 - min_lr_rate) * cosine.
 */
export function lrMultiplier(name: ScheduleName, step: number, warmup: number, total: number, minLrRate = 0): number {
  if (name === 'constant') return 1;
  if (step < warmup) return step / Math.max(1, warmup);
  const progress = (step - warmup) / Math.max(1, total - warmup);
  switch (name) {
    case 'constant_with_warmup':
      return 1;
    case 'linear':
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case 'cosine':
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    case 'cosine_with_min_lr':
      return minLrRate + (1 - minLrRate) * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
  }
}

/** warmup_steps if set (> 0), else ceil(warmup_ratio * total), as TrainingArguments.get_warmup_steps. */
export function warmupSteps(warmupStepsArg: number, warmupRatio: number, total: number): number {
  return warmupStepsArg > 0 ? warmupStepsArg : Math.ceil(warmupRatio * total);
}
