// A Hugging Face tokenizer from its files: tokenizer.json run by @huggingface/tokenizers, special tokens
// from tokenizer_config.json / special_tokens_map.json / generation_config.json / config.json, chat
// templates through @huggingface/jinja. createTokenizer takes the parsed files; loadTokenizer reads a folder.
import { Tokenizer } from '@huggingface/tokenizers';
import { ChatTemplateRenderer, collectChatTemplates } from './chat-template.js';
import { resolveSpecialTokens, tokenText, type Json } from './special.js';
import type { ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions, TextTokenizer } from './types.js';
import { vocabIndex } from './vocab.js';

export interface TokenizerFiles {
  tokenizerJson: Json;
  tokenizerConfig?: Json | null;
  specialTokensMap?: Json | null;
  generationConfig?: Json | null;
  /** The model's config.json. */
  modelConfig?: Json | null;
  /** Contents of chat_template.jinja (overrides tokenizer_config's default template). */
  chatTemplateFile?: string | null;
  /** Named templates, e.g. from additional_chat_templates/<name>.jinja. */
  namedChatTemplates?: Record<string, string>;
  /** Where the files came from, for messages. */
  source?: string;
}

/**
 * transformers (TokenizersBackend) rebuilds the post-processor as `[BOS] $A [EOS]` from add_bos_token /
 * add_eos_token when tokenizer_config.json sets either key, or when tokenizer.json has no post-processor;
 * otherwise tokenizer.json's own post-processor decides what encode(..., add_special_tokens) adds.
 */
function postProcessorFor(tj: Json, cfg: Json, bos: [string, number] | null, eos: [string, number] | null): unknown {
  const explicit = 'add_bos_token' in cfg || 'add_eos_token' in cfg;
  if (!explicit && tj.post_processor) return tj.post_processor;
  const addBos = cfg.add_bos_token === true && bos !== null;
  const addEos = cfg.add_eos_token === true && eos !== null;
  const special = (tok: [string, number], typeId: number) => ({ SpecialToken: { id: tok[0], type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const single = [...(addBos ? [special(bos!, 0)] : []), seq('A', 0), ...(addEos ? [special(eos!, 0)] : [])];
  const pair = [...single, ...(addBos ? [special(bos!, 1)] : []), seq('B', 1), ...(addEos ? [special(eos!, 1)] : [])];
  const specialTokens: Json = {};
  for (const t of [addBos ? bos : null, addEos ? eos : null]) {
    if (t) specialTokens[t[0]] = { id: t[0], ids: [t[1]], tokens: [t[0]] };
  }
  return { type: 'TemplateProcessing', single, pair, special_tokens: specialTokens };
}

export function createTokenizer(files: TokenizerFiles): TextTokenizer {
  const source = files.source ?? 'tokenizer files';
  const cfg: Json = files.tokenizerConfig ?? {};
  const warnings: string[] = [];
  const index = vocabIndex(files.tokenizerJson);
  const sp = resolveSpecialTokens({
    tokenizerConfig: cfg,
    specialTokensMap: files.specialTokensMap ?? null,
    generationConfig: files.generationConfig ?? null,
    modelConfig: files.modelConfig ?? null,
    tokenToId: index.tokenToId,
    idToToken: index.idToToken,
    warnings,
  });

  const tj: Json = {
    ...files.tokenizerJson,
    post_processor: postProcessorFor(
      files.tokenizerJson,
      cfg,
      sp.bosToken !== null && sp.bosId !== null ? [sp.bosToken, sp.bosId] : null,
      sp.eosToken !== null && sp.eosId !== null ? [sp.eosToken, sp.eosId] : null,
    ),
  };
  // The library reads a few tokenizer_config keys; give it plain strings for the token entries, and
  // transformers v5's default of no clean-up of spaces on decode.
  const libConfig: Json = { ...cfg, clean_up_tokenization_spaces: cfg.clean_up_tokenization_spaces ?? false };
  for (const k of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    if (k in libConfig) libConfig[k] = tokenText(libConfig[k]);
  }
  libConfig.additional_special_tokens = ((cfg.additional_special_tokens ?? []) as unknown[])
    .map(tokenText)
    .filter((t): t is string => t !== null);
  let lib: Tokenizer;
  try {
    lib = new Tokenizer(tj, libConfig);
  } catch (e) {
    throw new Error(
      `createTokenizer: @huggingface/tokenizers cannot build the tokenizer.json of ${source}: ` +
        `${(e as Error).message} (model type ${String((files.tokenizerJson.model as Json | undefined)?.type)})`,
    );
  }

  const encode = (text: string, opts: EncodeOptions = {}): number[] => {
    const ids = lib.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids as Array<
      number | undefined
    >;
    for (const id of ids) {
      if (typeof id !== 'number') {
        throw new Error(
          `encode: ${JSON.stringify(text.slice(0, 60))} has a piece with no id in ${source} ` +
            `and the tokenizer has no unk_token`,
        );
      }
    }
    return ids as number[];
  };

  // What encode adds around text: probe with "a" (any vocabulary has it; "" would confuse BOS with EOS
  // when they are one token), or "" if "a" cannot be encoded.
  let probe = 'a';
  try {
    encode(probe);
  } catch {
    probe = '';
  }
  const probeWith = encode(probe, { addSpecialTokens: true });
  const probeWithout = encode(probe, { addSpecialTokens: false });
  const addsBos = sp.bosId !== null && probeWith[0] === sp.bosId && probeWithout[0] !== sp.bosId;
  const addsEos =
    sp.eosId !== null &&
    probeWith[probeWith.length - 1] === sp.eosId &&
    probeWithout[probeWithout.length - 1] !== sp.eosId;

  const named: Record<string, string> = { ...(files.namedChatTemplates ?? {}) };
  const templates = collectChatTemplates(cfg.chat_template, { defaultFile: files.chatTemplateFile, named }, source);
  const renderer = new ChatTemplateRenderer(
    templates,
    {
      bos_token: sp.bosToken,
      eos_token: sp.eosToken,
      pad_token: sp.padToken,
      unk_token: sp.unkToken,
    },
    source,
  );

  return {
    encode,
    decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
      if (ids.length === 0) return '';
      return lib.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false });
    },
    tokenToId: (t) => lib.token_to_id(t) ?? null,
    idToToken: (i) => lib.id_to_token(i) ?? null,
    bosToken: sp.bosToken,
    eosToken: sp.eosToken,
    padToken: sp.padToken,
    bosId: sp.bosId,
    eosId: sp.eosId,
    eosIds: sp.eosIds,
    padId: sp.padId,
    vocabSize: index.size,
    addsBos,
    addsEos,
    chatTemplateNames: renderer.names,
    hasChatTemplate: renderer.names.length > 0,
    applyChatTemplate: (messages: ChatMessage[], opts?: ChatTemplateOptions) => renderer.render(messages, opts),
    source,
    warnings,
  };
}
