import libmime from 'libmime';
import { decode as decodeCharset } from 'libmime/lib/charset';

/**
 * Turns a header value as it came off the wire into text that is safe to store and to show.
 * Header bytes are attacker-controlled and come in every encoding an office meets: RFC 2047
 * encoded-words in any charset (ISO-2022-JP above all), raw ISO-2022-JP escape sequences from old
 * Japanese mailers, raw UTF-8 (SMTPUTF8), raw Shift_JIS or EUC-JP. Whatever the input, the output
 * is valid Unicode without NUL or any other control character.
 */

const ISO_2022_ESCAPE = /\x1b[$(][@BJD]/;
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

function decodeRawBytes(bytes: Buffer): string {
  if (bytes.every((b) => b < 0x80)) {
    const ascii = bytes.toString('latin1');
    return ISO_2022_ESCAPE.test(ascii) ? decodeCharset(bytes, 'ISO-2022-JP') : ascii;
  }
  for (const charset of ['utf-8', 'shift_jis', 'euc-jp']) {
    try {
      return new TextDecoder(charset, { fatal: true }).decode(bytes);
    } catch {
      /* not this one */
    }
  }
  return new TextDecoder('windows-1252').decode(bytes);
}

/** Removes what must never be stored or shown: NUL, C0/C1 controls; tabs and folding become spaces. */
export function sanitizeText(text: string): string {
  return text.replace(/\t/g, ' ').replace(CONTROL, '').replace(/ {2,}/g, ' ').trim();
}

/**
 * Decodes one header value given as the bytes after "Name:" (a latin1 string holds them one char
 * per byte, as mailsplit keeps headers).
 */
export function decodeHeaderValue(raw: string | Buffer): string {
  return sanitizeText(decodeEncodedWords(headerBytesToText(raw)));
}

/** The raw bytes of a header value as Unicode text, unfolded, encoded-words still encoded. */
export function headerBytesToText(raw: string | Buffer): string {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  return decodeRawBytes(bytes).replace(/\r?\n[ \t]+/g, ' ');
}

/** RFC 2047 encoded-words in any charset libmime knows; an unknown charset falls back to UTF-8. */
export function decodeEncodedWords(text: string): string {
  try {
    return libmime.decodeWords(text);
  } catch {
    return text;
  }
}

/** Splits a raw header block into [lower-case name, raw value as latin1] pairs, unfolded. */
export function splitHeaderBlock(block: Buffer): Array<[string, string]> {
  const text = block.toString('latin1');
  const out: Array<[string, string]> = [];
  for (const line of text.split(/\r?\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).replace(/^[ \t]+/, '')]);
  }
  return out;
}
