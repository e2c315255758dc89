// assistant_only_loss on a real byte-level BPE tokenizer: tsdpo's loss mask of multi-turn
// conversations (generation spans rendered by tsdpo, mapped to tokens through decoded prefixes)
// equals transformers 5.17's assistant_masks for TRL 1.13's Qwen3 training template (which has
// {% generation %} blocks), read from the reference venv at run time.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareSftDataset, labelsOf } from '../../src/data/sft.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { QWEN3_DIR, tempDir } from '../helpers/assets.js';
import { referenceAvailable, runPython, VENV_PYTHON } from './harness.js';

const avail = referenceAvailable();

// Contents have no leading or trailing whitespace: @huggingface/jinja's strip('\n') / lstrip('\n') (which this
// template uses) strip every whitespace character, Python's only newlines; a different issue from the masks.
const CONVERSATIONS = [
  [
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: 'Hello! How can I help?' },
  ],
  [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Ünïcode — ok? 🎉' },
    { role: 'assistant', content: 'Oui: très bien 👍' },
    { role: 'user', content: 'And 2+2?' },
    { role: 'assistant', content: '4.' },
  ],
];

test(
  'assistant_only_loss masks = transformers assistant_masks (Qwen3 tokenizer, TRL qwen3_training template)',
  { skip: avail.ok ? false : avail.why },
  async () => {
    const root = tempDir('tsdpo-ref-masks-');
    const site = readdirSync(join(VENV_PYTHON, '..', '..', 'lib'))[0];
    const template = readFileSync(
      join(VENV_PYTHON, '..', '..', 'lib', site, 'site-packages', 'trl', 'chat_templates', 'qwen3_training.jinja'),
      'utf8',
    );
    const dir = join(root, 'qwen3-tok');
    mkdirSync(dir);
    copyFileSync(join(QWEN3_DIR, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    writeFileSync(
      join(dir, 'tokenizer_config.json'),
      JSON.stringify({
        ...JSON.parse(readFileSync(join(QWEN3_DIR, 'tokenizer_config.json'), 'utf8')),
        chat_template: template,
      }),
    );
    const py = `import json, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
out = []
for msgs in json.loads(sys.argv[2]):
    r = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    out.append({"ids": list(r["input_ids"]), "mask": list(r["assistant_masks"])})
print(json.dumps(out))`;
    const expected = JSON.parse(await runPython(['-c', py, dir, JSON.stringify(CONVERSATIONS)], root)) as {
      ids: number[];
      mask: number[];
    }[];
    const tok = loadTokenizer(dir);
    const { examples } = prepareSftDataset(
      CONVERSATIONS.map((messages) => ({ messages })),
      tok,
      { assistantOnlyLoss: true },
    );
    assert.deepEqual(
      examples.map((e) => ({ ids: e.ids, mask: labelsOf(e) })),
      expected,
    );
    assert.ok(
      expected.every((e) => e.mask.includes(1) && e.mask.includes(0)),
      'each conversation has assistant and other tokens',
    );
  },
);
