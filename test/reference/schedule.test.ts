// The learning-rate multipliers of train/schedule.ts against transformers' own schedulers
// (get_scheduler(...).lr_lambdas), step by step, warmup and the cosine's floor (min_lr_rate) included.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lrMultiplier, SCHEDULES } from '../../src/train/schedule.js';
import { tempDir } from '../helpers/assets.js';
import { referenceAvailable, runPython } from './harness.js';

const avail = referenceAvailable();
/** [warmup, total, min_lr_rate] */
const CASES: Array<[number, number, number]> = [
  [0, 10, 0.1],
  [3, 10, 0.1],
  [100, 1200, 0.1],
  [5, 7, 0.25],
];

test(
  'lrMultiplier = transformers get_scheduler(name).lr_lambdas[0] for every schedule (cosine_with_min_lr: min_lr_rate)',
  { skip: avail.ok ? false : avail.why },
  async () => {
    const py = `
import json, sys, torch
from transformers import get_scheduler
out = {}
for name in json.loads(sys.argv[1]):
    rows = []
    for warmup, total, floor in json.loads(sys.argv[2]):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        kw = {"min_lr_rate": floor} if name == "cosine_with_min_lr" else None
        s = get_scheduler(name, opt, num_warmup_steps=warmup, num_training_steps=total, scheduler_specific_kwargs=kw)
        rows.append([s.lr_lambdas[0](k) for k in range(total)])
    out[name] = rows
print(json.dumps(out))`;
    const expected = JSON.parse(
      await runPython(['-c', py, JSON.stringify(SCHEDULES), JSON.stringify(CASES)], tempDir('tsdpo-ref-sched-')),
    ) as Record<string, number[][]>;
    for (const name of SCHEDULES) {
      CASES.forEach(([warmup, total, floor], c) => {
        for (let k = 0; k < total; k++) {
          const got = lrMultiplier(name, k, warmup, total, floor),
            want = expected[name][c][k];
          assert.ok(
            Math.abs(got - want) <= 1e-15,
            `${name} (warmup ${warmup}, total ${total}, min_lr_rate ${floor}) step ${k}: tsdpo ${got}, transformers ${want}`,
          );
        }
      });
    }
  },
);
