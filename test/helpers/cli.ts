// Running the built command line (bin/tsdpo.js) in a child process, and model folders for it: the
// demo model, and each transformers fixture family (test/fixtures/hf-tiny) with the toy character
// tokenizer (ids < 90 fit their vocabulary of 512; <s> = 1 and </s> = 2 match their config.json).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, toyTokenizerJson } from './assets.js';

export const BIN = join(ROOT, 'bin/tsdpo.js');
export const DEMO_MODEL = join(ROOT, 'assets/demo-model');
export const FAMILY_FIXTURES = join(ROOT, 'test/fixtures/hf-tiny');

/** `tsdpo ...args` in `cwd` (default: the repository root); stdout and stderr as text. */
export function runCli(args: string[], cwd = ROOT): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd });
}

/** A minimal chat template (role: content lines), enough for conversational data. */
export const TOY_CHAT_TEMPLATE =
  "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% " +
  'endfor %}{% if add_generation_prompt %}assistant:{% endif %}';

/** Copies a fixture family's policy into dir with the toy tokenizer (and a chat template). */
export function familyModel(arch: string, dir: string): string {
  cpSync(join(FAMILY_FIXTURES, arch, 'policy'), dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(toyTokenizerJson()));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      bos_token: '<s>',
      eos_token: '</s>',
      pad_token: '<pad>',
      add_bos_token: true,
      add_eos_token: false,
      chat_template: TOY_CHAT_TEMPLATE,
    }),
  );
  return dir;
}
