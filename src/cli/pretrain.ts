// `tsdpo pretrain`: trains the demo's small GPT-2 from scratch on the demo corpus (src/demo/pretrain.ts).
// The defaults are the settings of the committed checkpoint in assets/demo-model/.
import { Command } from 'commander';
import { PRETRAIN_OPTIONS, pretrain } from '../demo/pretrain.js';
import { addOptions, resolveOptions } from './options.js';

export function pretrainCommand(): Command {
  const cmd = new Command('pretrain')
    .description(
      'Pre-train the demo model (a small GPT-2) from scratch on the demo corpus; writes a Hugging Face folder.\n' +
        'With the defaults it rewrites the committed assets/demo-model/ (about 30 minutes on two cores).',
    )
    .addHelpText(
      'after',
      '\nThe corpus (review sentences + public-domain books + State of the Union addresses) ships in npm\n' +
        'packages; its sources and licences are in docs/data-licences.md.',
    );
  addOptions(cmd, PRETRAIN_OPTIONS);
  cmd.action(async () => {
    const cfg = resolveOptions(cmd, PRETRAIN_OPTIONS);
    const r = await pretrain(cfg);
    const h = r.heldOut;
    process.stderr.write(
      `done: ${r.steps} steps, ${r.tokens} tokens in ` +
        `${(r.seconds / 60).toFixed(1)} min; held-out loss ${h.loss.toFixed(3)} ` +
        `(perplexity ${h.perplexity.toFixed(1)}; reviews ${h.reviewLoss.toFixed(3)}, ` +
        `prose ${h.proseLoss.toFixed(3)}); model in ${r.output}\n`,
    );
  });
  return cmd;
}
