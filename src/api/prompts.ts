// Prompts and rewards named on a command line or in a config, for Node: prompts from a .txt /
// .jsonl / .json / .parquet file, and a reward from 'sentiment', a reward model folder or a module.
// `tsdpo eval` and `tsdpo ppo` read theirs with these.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DataError, fileKind, readRecordsFromFile, type Where } from '../data/index.js';
import { looksConversational, messagesField, renderPrompt, requireTemplate, textField } from '../data/messages.js';
import { reward as sentimentReward } from '../eval/reward.js';
import { loadRewardModel, rewardModelJudge } from '../eval/reward-model.js';
import type { EvalPrompt, RewardFn } from '../eval/sample.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { evalPrompts } from './infer.js';

/**
 * Prompts from a file: .txt (one per non-empty line), or .jsonl / .json / .parquet rows whose
 * `field` is a string or a list of chat messages (rendered with the chat template, generation
 * prompt added). With `chat`, string prompts are wrapped as one user message. A prompt that
 * leaves no room for `maxNewTokens` within `maxPositions` (learned positions: GPT-2) is an error.
 */
export async function readPrompts(
  file: string,
  field: string,
  tok: TextTokenizer,
  chat: boolean,
  maxNewTokens = 0,
  maxPositions = Infinity,
): Promise<EvalPrompt[]> {
  const rows: { text: string; where: Where }[] = [];
  if (chat && !tok.hasChatTemplate)
    throw new Error(
      `--chat: the tokenizer of ${tok.source} has no chat template (add chat_template.jinja to the model folder)`,
    );
  const asChat = (text: string, where: Where) => renderPrompt(tok, [{ role: 'user', content: text }], where, field);
  const isText = extname(file).toLowerCase() === '.txt';
  const fieldName = isText ? null : field; // what errors name
  if (isText) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const text = line.replace(/\r$/, '');
        const where = { file, line: i + 1 };
        if (text.trim() !== '') rows.push({ text: chat ? asChat(text, where) : text, where });
      });
  } else {
    if (fileKind(file) === null) throw new Error(`${file}: prompts must be a .txt, .jsonl, .json or .parquet file`);
    for (const r of await readRecordsFromFile(file)) {
      if (r.error !== undefined) throw new DataError(r.where, null, r.error);
      if (!r.value || typeof r.value !== 'object' || Array.isArray(r.value))
        throw new DataError(r.where, null, 'expected an object');
      const row = r.value as Record<string, unknown>;
      const conversational = looksConversational(row[field]);
      if (conversational) requireTemplate(tok, r.where);
      const text = conversational
        ? renderPrompt(tok, messagesField(row, field, r.where), r.where, field)
        : chat
          ? asChat(textField(row, field, r.where), r.where)
          : textField(row, field, r.where);
      rows.push({ text, where: r.where });
    }
  }
  if (rows.length === 0) throw new Error(`${file}: no prompts`);
  return evalPrompts(tok, rows, maxNewTokens, maxPositions, fieldName);
}

/**
 * `sentiment` (the demo's AFINN reward of the completion), a reward model folder
 * (*ForSequenceClassification; `label` picks a classifier's label), or a module whose default (or
 * `reward`) export is the function.
 */
export async function loadReward(spec: string, label?: string): Promise<RewardFn> {
  if (spec === 'sentiment') return (_prompt, completion) => sentimentReward(completion);
  if (existsSync(spec) && statSync(spec).isDirectory()) return rewardModelJudge(loadRewardModel(spec), label);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(spec)).href)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(
      `--reward ${spec}: cannot load the module (${(e as Error).message}); ` +
        `give 'sentiment', a reward model folder or a .js/.mjs file`,
    );
  }
  const fn = mod.default ?? mod.reward;
  if (typeof fn !== 'function') {
    throw new Error(
      `--reward ${spec}: the module exports no function (export default ` +
        `(prompt, completion) => number, or export function reward)`,
    );
  }
  return fn as RewardFn;
}
