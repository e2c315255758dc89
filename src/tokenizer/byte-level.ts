// GPT-2's byte-level pieces: the pre-tokenisation regex and the byte <-> printable-character
// table (Radford et al. 2019; `bytes_to_unicode` in openai/gpt-2 encoder.py), as Hugging Face's
// ByteLevel pre-tokenizer and decoder use them.

/**
 * GPT-2's split: contractions, optional space + letters, optional space + digits, optional space +
 * other symbols, and whitespace runs (a run before a word leaves its last space to that word).
 * Same pattern as the Rust `tokenizers` crate and @huggingface/tokenizers (JS `u` mode).
 */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * byte -> character: the 188 printable Latin-1 bytes map to themselves, the other 68 (control
 * codes, space, 0x7f-0xa0, 0xad) to U+0100 upwards in byte order; so a space is 'Ġ' (U+0120).
 */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const table = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return table;
})();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Pre-tokenises `text` (no special tokens in it) into GPT-2 pieces, each as byte characters. */
export function preTokenize(text: string): string[] {
  const pieces = text.match(GPT2_SPLIT);
  return pieces === null ? [] : pieces.map(bytesToChars);
}

/** UTF-8 bytes of `s` written as byte characters: "Hi there" -> "HiĠthere". */
export function bytesToChars(s: string): string {
  let out = '';
  for (const b of utf8.encode(s)) out += BYTE_TO_CHAR[b];
  return out;
}

/** Inverse of bytesToChars; invalid UTF-8 (a token cut inside a character) decodes to U+FFFD. */
export function charsToText(chars: string): string {
  const bytes = new Uint8Array(chars.length);
  for (let i = 0; i < chars.length; i++) {
    const b = CHAR_TO_BYTE.get(chars[i]!);
    if (b === undefined) {
      throw new Error(
        `charsToText: "${chars[i]}" (U+${chars.charCodeAt(i).toString(16)}) is not a byte-level character`,
      );
    }
    bytes[i] = b;
  }
  return utf8Decoder.decode(bytes);
}
