// Chat templates: which ones a model folder has, and rendering them as transformers' apply_chat_template
// does (Jinja with trim_blocks/lstrip_blocks, variables messages, tools, documents, add_generation_prompt
// and the special-token strings; continue_final_message by the marker-and-cut rule; {% generation %}
// blocks, whose bounds transformers records for return_assistant_tokens_mask).
import { Template } from '@huggingface/jinja';
import type { ChatMessage, ChatTemplateOptions } from './types.js';

// transformers appends this marker to the final message, renders, and cuts the text at the marker.
const CONTINUE_TAG = 'CONTINUE_FINAL_MESSAGE_TAG ';

// {% generation %} ... {% endgeneration %} (transformers' Jinja extension) become these two private-use
// characters in the rendered text, so the block bounds survive rendering. Each tag is rewritten as a
// block that prints its marker, so trim_blocks, lstrip_blocks and the -%} / {%- whitespace control act
// as on the original tag.
export const GENERATION_START = '\uE000';
export const GENERATION_END = '\uE001';
const GENERATION_TAG = /\{%(-?)\s*(end)?generation\s*(-?)%\}/g;

function markGenerationTags(template: string): string {
  return template.replace(
    GENERATION_TAG,
    (_m, lstrip: string, end: string | undefined, rstrip: string) =>
      `{%${lstrip} if true %}${end ? GENERATION_END : GENERATION_START}{% endif ${rstrip}%}`,
  );
}

/** Whether a template has {% generation %} blocks (needed for assistant-only loss). */
export function hasGenerationBlocks(template: string): boolean {
  return new RegExp(GENERATION_TAG.source).test(template);
}

/**
 * The text without generation markers, and each {% generation %} block's [start, end) character span
 * in it (the spans transformers' apply_chat_template records).
 */
export function splitGenerationMarkers(marked: string): { text: string; spans: Array<[number, number]> } {
  const spans: Array<[number, number]> = [];
  let text = '',
    open = -1;
  for (const ch of marked) {
    if (ch === GENERATION_START) open = text.length;
    else if (ch === GENERATION_END) {
      if (open >= 0) spans.push([open, text.length]);
      open = -1;
    } else text += ch;
  }
  return { text, spans };
}

/** Templates by name. A folder's chat_template.jinja (or the single string in tokenizer_config) is "default". */
export type ChatTemplates = Map<string, string>;

/** Collect templates from tokenizer_config's chat_template (string or [{name, template}]) and template files. */
export function collectChatTemplates(
  configTemplate: unknown,
  files: { defaultFile?: string | null; named?: Record<string, string> },
  where: string,
): ChatTemplates {
  const out: ChatTemplates = new Map();
  if (typeof configTemplate === 'string') out.set('default', configTemplate);
  else if (Array.isArray(configTemplate)) {
    for (const [i, entry] of configTemplate.entries()) {
      const e = entry as { name?: unknown; template?: unknown };
      if (typeof e?.name !== 'string' || typeof e?.template !== 'string') {
        throw new Error(`loadTokenizer: ${where} chat_template[${i}] should be {name, template} strings`);
      }
      out.set(e.name, e.template);
    }
  } else if (configTemplate !== undefined && configTemplate !== null) {
    throw new Error(
      `loadTokenizer: ${where} chat_template is ${typeof configTemplate}; ` +
        `expected a string or a list of {name, template}`,
    );
  }
  // A chat_template.jinja file wins over tokenizer_config's default, as in transformers.
  if (files.defaultFile) out.set('default', files.defaultFile);
  for (const [name, t] of Object.entries(files.named ?? {})) out.set(name, t);
  return out;
}

export interface TemplateTokens {
  bos_token?: string | null;
  eos_token?: string | null;
  pad_token?: string | null;
  unk_token?: string | null;
}

export class ChatTemplateRenderer {
  private compiled = new Map<string, Template>();

  constructor(
    readonly templates: ChatTemplates,
    readonly tokens: TemplateTokens,
    readonly source: string,
  ) {}

  get names(): string[] {
    return [...this.templates.keys()];
  }

  private pick(name: string | undefined): { name: string; text: string } {
    if (this.templates.size === 0) {
      throw new Error(
        `applyChatTemplate: the tokenizer in ${this.source} has no chat template ` +
          `(no chat_template in tokenizer_config.json, no chat_template.jinja); conversational data needs one, ` +
          `or pass text data (prompt/chosen/rejected strings)`,
      );
    }
    const key =
      name ?? (this.templates.has('default') ? 'default' : this.templates.size === 1 ? this.names[0] : undefined);
    const text = key === undefined ? undefined : this.templates.get(key);
    if (key === undefined || text === undefined) {
      throw new Error(
        `applyChatTemplate: no chat template named '${name ?? 'default'}' in ${this.source}; ` +
          `it has ${this.names.map((n) => `'${n}'`).join(', ')}`,
      );
    }
    return { name: key, text };
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const { name, text } = this.pick(opts.templateName);
    const addGen = opts.addGenerationPrompt ?? false;
    const cont = opts.continueFinalMessage ?? false;
    if (addGen && cont) {
      throw new Error(
        'applyChatTemplate: addGenerationPrompt and continueFinalMessage cannot both be set ' +
          '(one opens a new assistant turn, the other continues the last message)',
      );
    }
    let chat = messages;
    let finalText = '';
    if (cont) {
      const last = messages[messages.length - 1];
      if (!last || typeof last.content !== 'string') {
        throw new Error('applyChatTemplate: continueFinalMessage needs a last message with string content');
      }
      if (!text.includes('content')) {
        throw new Error(
          `applyChatTemplate: template '${name}' never reads 'content', so the final message cannot be continued`,
        );
      }
      finalText = last.content;
      chat = [...messages.slice(0, -1), { ...last, content: last.content + CONTINUE_TAG }];
    }
    let template = this.compiled.get(name);
    if (!template) {
      template = new Template(markGenerationTags(text));
      this.compiled.set(name, template);
    }
    const vars: Record<string, unknown> = {
      messages: chat,
      tools: null,
      documents: null,
      add_generation_prompt: addGen,
    };
    // Special-token strings, as transformers passes its special_tokens_map (unset ones are left out).
    for (const [k, v] of Object.entries(this.tokens)) if (typeof v === 'string') vars[k] = v;
    Object.assign(vars, opts.variables ?? {});
    let rendered: string;
    try {
      rendered = template.render(vars);
    } catch (e) {
      throw new Error(`applyChatTemplate: template '${name}' of ${this.source} failed: ${(e as Error).message}`);
    }
    if (cont) {
      const tag = CONTINUE_TAG.trim();
      if (!rendered.includes(finalText.trim()) || !rendered.includes(tag)) {
        throw new Error(
          'applyChatTemplate: continueFinalMessage is set but the final message does not appear in ' +
            `the rendered chat (the template rewrites it?). Final message: ${JSON.stringify(finalText.trim())}`,
        );
      }
      const at = rendered.lastIndexOf(tag);
      rendered = rendered.startsWith(CONTINUE_TAG, at) ? rendered.slice(0, at) : rendered.slice(0, at).trimEnd();
    }
    if (opts.markGeneration) return rendered;
    return rendered.includes(GENERATION_START) ? splitGenerationMarkers(rendered).text : rendered;
  }
}
