// `tsdpo eval`: a trained policy against its reference (the model before training) on prompts,
// judged by a reward: mean reward of each, KL(policy || reference) on the policy's samples, and
// the policy's win rate against the reference's samples (the DPO paper's measures, Sec. 6).
import { Command } from 'commander';
import { evaluate } from '../api/infer.js';
import { loadReward, readPrompts } from '../api/prompts.js';
import { initEngine } from '../engine.js';
import { EVAL_OPTIONS } from '../eval/options.js';
import { evaluateShard, parseShard, shardLines } from '../eval/shard.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModel } from '../models/load.js';
import { loadAdapter } from '../models/lora.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { progress, type Progress } from '../train/progress.js';
import { addOptions, resolveOptions } from './options.js';

export { loadReward, readPrompts };

export function evalCommand(): Command {
  const cmd = new Command('eval').description(
    'Evaluate a policy against its reference on prompts, judged by a reward: mean reward of each, ' +
      "KL(policy || reference) estimated on the policy's samples, and the policy's win rate against the reference's " +
      'samples (ties 1/2). Both models sample with the same random numbers.\n' +
      'Minimal use: tsdpo eval --model DIR --reference DIR --prompts FILE [--reward sentiment|MODULE|DIR]',
  );
  addOptions(cmd, EVAL_OPTIONS);
  return cmd.action(async () => {
    const o = resolveOptions(cmd, EVAL_OPTIONS);
    const temperatures = o.temperature.map((t) => Number(t));
    if (temperatures.length === 0 || temperatures.some((t) => !(t > 0)))
      throw new Error(
        `--temperature must be > 0 (or a comma-separated list of such), got '${o.temperature.join(',')}'`,
      );
    if (!o.reference && !o.adapter) {
      throw new Error(
        'tsdpo eval: --reference is required (the model before training, e.g. the SFT model DPO started from); ' +
          'with --adapter the reference defaults to --model without the adapter',
      );
    }
    await initEngine({ device: o.device, log: (l) => process.stderr.write(`${l}\n`) });
    const tok = loadTokenizer(o.model);
    const reward = await loadReward(o.reward, o.reward_label || undefined);
    const policy = loadModel(o.model);
    // GPT-2's learned positions; rotary models have no hard limit
    const positions = Number(policy.config.n_positions ?? Infinity);
    const prompts = await readPrompts(o.prompts, o.prompt_field, tok, o.chat, o.max_new_tokens, positions);
    if (o.adapter) loadAdapter(policy, o.adapter);
    const reference = loadModel(o.reference || o.model);
    if (o.shard) {
      // Part i of n: its samples (with their KL terms) go to --output; `tsdpo merge-shards` summarises the parts.
      if (!o.output) throw new Error("tsdpo eval --shard: give --output FILE for the shard's samples");
      const shard = parseShard(o.shard);
      const part = await evaluateShard(policy, reference, tok, prompts, reward, shard, {
        samples: o.samples,
        max_new_tokens: o.max_new_tokens,
        seed: o.seed,
        batch_size: o.batch_size,
        temperatures,
      });
      const settings = {
        model: o.model,
        adapter: o.adapter || null,
        reference: o.reference || null,
        prompts: o.prompts,
        reward: o.reward,
        samples_per_prompt: o.samples,
        max_new_tokens: o.max_new_tokens,
        temperatures,
        seed: o.seed,
        chat: o.chat,
      };
      writeFileAtomic(o.output, shardLines({ ...part.header, settings }, part.samples));
      return;
    }
    const lines: string[] = [];
    for (const temperature of temperatures) {
      const bars: Record<string, Progress> = {};
      const r = await evaluate(policy, reference, tok, prompts, reward, {
        samples: o.samples,
        max_new_tokens: o.max_new_tokens,
        temperature,
        seed: o.seed,
        batch_size: o.batch_size,
        onProgress: (model, done, total) => {
          bars[model] ??= progress(
            `${model}, temperature ${temperature}: ${o.samples} completions x ${prompts.length} prompts`,
            total,
            { silent: o.json },
          );
          bars[model].update(done);
          if (done === total) bars[model].stop();
        },
      });
      const { completions, ...result } = r;
      for (const name of o.output ? (['policy', 'reference'] as const) : []) {
        completions[name].forEach((g, i) =>
          g.forEach((x) =>
            lines.push(
              JSON.stringify({
                prompt: prompts[i].text,
                model: name,
                temperature,
                completion: x.text,
                reward: x.reward,
              }) + '\n',
            ),
          ),
        );
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        continue;
      }
      const pm = (x: number | null, se: number | null, d: number) =>
        x === null ? '-' : `${x.toFixed(d)}${se === null ? '' : ` ± ${se.toFixed(d)}`}`;
      process.stdout.write(
        [
          `${prompts.length} prompts x ${o.samples} samples per model, temperature ${temperature}, reward ${o.reward}`,
          `policy     reward ${pm(result.policy_reward, result.policy_reward_se, 3)}   KL(policy || reference) ` +
            `${temperature === 1 ? `${pm(result.kl, result.kl_se, 3)} nats` : '- (estimated at temperature 1 only)'}`,
          `reference  reward ${pm(result.reference_reward, result.reference_reward_se, 3)}`,
          `win rate of the policy against the reference: ` +
            `${pm(result.win_rate, result.win_rate_se, 3)} (ties count 1/2)`,
        ].join('\n') + '\n\n',
      );
    }
    if (o.output) writeFileAtomic(o.output, lines.join(''));
  });
}
