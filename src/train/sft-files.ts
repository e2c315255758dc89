// SFT's files (Node): the chat template of chat_template_path read and checked, saved beside the
// trained model, and the splits loaded from dataset files. The rest of SFT is train/sft.ts's.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadSftDataset } from '../data/load.js';
import type { LoadOptions } from '../data/pipeline.js';
import type { SftDataOptions, SftDataset } from '../data/sft.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { SftConfig } from './config.js';
import { arrangeSftData, sftDataOptions, sftTokenizer, withChatTemplateText } from './sft.js';

/** The contents of chat_template_path's file, checked to be a .jinja / .j2 template file. */
export function readChatTemplate(path: string): string {
  if (!/\.(jinja|j2)$/.test(path) || !existsSync(path) || !statSync(path).isFile()) {
    throw new Error(
      `chat_template_path ${path}: expected a .jinja or .j2 template file ` +
        "(a tokenizer folder's template: copy its chat_template.jinja)",
    );
  }
  return readFileSync(path, 'utf8');
}

/**
 * The tokenizer with the chat template of a .jinja / .j2 file (TRL's SFTConfig.chat_template_path for a template file).
 */
export function withChatTemplate(tok: TextTokenizer, path: string): TextTokenizer {
  return path ? withChatTemplateText(tok, readChatTemplate(path), path) : tok;
}

/** The tokenizer SFT's rows go through, with chat_template_path's file read. */
export function sftTokenizerOf(cfg: SftConfig, tok: TextTokenizer): TextTokenizer {
  return sftTokenizer(cfg, tok, cfg.chat_template_path ? readChatTemplate(cfg.chat_template_path) : null);
}

/** With chat_template_path, the trained model's folder gets that template as chat_template.jinja (as TRL saves it). */
export function saveChatTemplate(cfg: SftConfig): void {
  if (cfg.chat_template_path)
    writeFileAtomic(join(cfg.output_dir, 'chat_template.jinja'), readFileSync(cfg.chat_template_path, 'utf8'));
}

/** Loads, tokenizes and (with packing) packs one SFT split as TRL 1.13's SFTTrainer prepares it. */
export async function loadSftData(
  cfg: SftConfig,
  tok: TextTokenizer,
  data: LoadOptions & SftDataOptions,
  path: string,
  split: string,
  isEval: boolean,
): Promise<SftDataset> {
  return arrangeSftData(
    cfg,
    await loadSftDataset(path, sftTokenizerOf(cfg, tok), sftDataOptions(cfg, data, split, isEval)),
    isEval,
  );
}
