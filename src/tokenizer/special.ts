// Special tokens (BOS, EOS, PAD, UNK) of a Hugging Face model folder: their text and ids.
// Order, as transformers resolves them: tokenizer_config.json, then special_tokens_map.json for what it
// leaves unset; ids come from the vocabulary; generation_config.json, then config.json, fill in ids the
// tokenizer files do not give (and list every EOS id: generation_config may hold several).

export type Json = Record<string, unknown>;

export interface SpecialTokens {
  bosToken: string | null;
  eosToken: string | null;
  padToken: string | null;
  unkToken: string | null;
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  unkId: number | null;
  eosIds: number[];
}

/** A special-token entry: a string, an AddedToken dict {content, ...}, or null. */
export function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** Ids from a config field that may be a number, a list of numbers, or absent. */
function idList(v: unknown): number[] {
  if (typeof v === 'number' && Number.isInteger(v)) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isInteger(x));
  return [];
}

export interface SpecialSources {
  tokenizerConfig: Json;
  specialTokensMap: Json | null;
  generationConfig: Json | null;
  modelConfig: Json | null;
  tokenToId(token: string): number | null;
  idToToken(id: number): string | null;
  warnings: string[];
}

export function resolveSpecialTokens(src: SpecialSources): SpecialTokens {
  const model = src.modelConfig ?? {};
  const textConfig = (model.text_config && typeof model.text_config === 'object' ? model.text_config : {}) as Json;
  // Config ids in the order they are trusted: generation_config, config, config.text_config (multimodal models).
  const configIds = (key: string): number[] => [
    ...idList(src.generationConfig?.[key]),
    ...idList(model[key]),
    ...idList(textConfig[key]),
  ];

  const one = (name: 'bos' | 'eos' | 'pad' | 'unk'): { text: string | null; id: number | null } => {
    const key = `${name}_token`;
    let text = tokenText(src.tokenizerConfig[key]);
    if (text === null && src.specialTokensMap) text = tokenText(src.specialTokensMap[key]);
    let id: number | null = null;
    if (text !== null) {
      id = src.tokenToId(text);
      if (id === null) {
        src.warnings.push(`${key} '${text}' is not in tokenizer.json's vocabulary; ignoring it`);
        text = null;
      }
    }
    if (id === null && name !== 'unk') {
      const fallback = configIds(`${key}_id`)[0];
      if (fallback !== undefined) {
        id = fallback;
        text = src.idToToken(fallback);
      }
    }
    return { text, id };
  };

  const bos = one('bos'),
    eos = one('eos'),
    pad = one('pad'),
    unk = one('unk');
  const eosIds: number[] = [];
  for (const id of [...(eos.id === null ? [] : [eos.id]), ...configIds('eos_token_id')]) {
    if (!eosIds.includes(id)) eosIds.push(id);
  }
  return {
    bosToken: bos.text,
    eosToken: eos.text,
    padToken: pad.text,
    unkToken: unk.text,
    bosId: bos.id,
    eosId: eos.id,
    padId: pad.id,
    unkId: unk.id,
    eosIds,
  };
}
