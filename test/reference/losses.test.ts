// The loss registry (src/train/losses.ts) against TRL 1.13's DPOTrainer, read from the reference
// venv's source: the loss_type names it computes, the ones f_divergence_type applies to, and the
// ones use_weighting refuses. tsdpo's own losses (trl: false) are the only extra names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOSS_NAMES, LOSSES, TRL_LOSSES } from '../../src/train/losses.js';
import { tempDir } from '../helpers/assets.js';
import { referenceAvailable, runPython } from './harness.js';

const avail = referenceAvailable();

const SCRIPT = `
import inspect, json, re
from trl import DPOTrainer
src = inspect.getsource(DPOTrainer)
init = inspect.getsource(DPOTrainer.__init__)
f_set = re.search(r"f_divergence_loss_types = \\{([^}]*)\\}", init).group(1)
weighting = re.search(r"use_weighting and any\\(loss_type in \\{([^}]*)\\}", init).group(1)
names = lambda s: re.findall(r'"([a-z_]+)"', s)
print(json.dumps({
  "losses": sorted(set(re.findall(r'loss_type == "([a-z_]+)"', src))),
  "fDivergence": sorted(names(f_set)),
  "sortsPairs": sorted(names(weighting)),
}))
`;

test(
  'the loss registry names and flags the losses TRL 1.13 has, as TRL does',
  { skip: avail.ok ? false : avail.why },
  async () => {
    const trl = JSON.parse(await runPython(['-c', SCRIPT], tempDir('tsdpo-ref-losses-'))) as Record<string, string[]>;
    assert.deepEqual(
      [...TRL_LOSSES].sort(),
      trl.losses,
      'TRL_LOSSES (entries with trl: true) vs the loss types DPOTrainer computes',
    );
    const flagged = (flag: 'fDivergence' | 'sortsPairs'): string[] => LOSS_NAMES.filter((n) => LOSSES[n][flag]).sort();
    assert.deepEqual(
      flagged('fDivergence'),
      trl.fDivergence,
      "entries with fDivergence vs TRL's f_divergence_loss_types",
    );
    assert.deepEqual(
      flagged('sortsPairs'),
      trl.sortsPairs,
      'entries with sortsPairs vs the losses TRL refuses with use_weighting',
    );
    for (const n of LOSS_NAMES.filter((x) => !LOSSES[x].trl))
      assert.equal(LOSSES[n].needsReference, false, `${n}: tsdpo's own losses are the reference-free ones`);
    for (const n of LOSS_NAMES) assert.ok(LOSSES[n].help.length > 0, `${n}: help`);
  },
);
