/**
 * Subjects, names and file names are written by whoever sent the mail. Characters that change
 * how text reads without being seen — bidirectional overrides and isolates (a file name
 * "invoice‮fdp.exe" reads as "invoiceexe.pdf"), zero-width spaces and joiners, the BOM — are cut
 * out of the text and shown as visible markers instead, so the page shows what the bytes say.
 */
export type Segment = { text: string } | { code: string; name: string };

const NAMES: Record<number, string> = {
  0x061c: 'ALM',
  0x115f: 'HANGUL FILLER',
  0x1160: 'HANGUL FILLER',
  0x180e: 'MVS',
  0x200b: 'ZWSP',
  0x200c: 'ZWNJ',
  0x200d: 'ZWJ',
  0x200e: 'LRM',
  0x200f: 'RLM',
  0x202a: 'LRE',
  0x202b: 'RLE',
  0x202c: 'PDF',
  0x202d: 'LRO',
  0x202e: 'RLO',
  0x2060: 'WJ',
  0x2061: 'FA',
  0x2062: 'IT',
  0x2063: 'IS',
  0x2064: 'IP',
  0x2066: 'LRI',
  0x2067: 'RLI',
  0x2068: 'FSI',
  0x2069: 'PDI',
  0x206a: 'ISS',
  0x206b: 'ASS',
  0x206c: 'IAFS',
  0x206d: 'AAFS',
  0x206e: 'NADS',
  0x206f: 'NODS',
  0x3164: 'HANGUL FILLER',
  0xfeff: 'BOM',
  0xffa0: 'HANGUL FILLER',
};

const HIDDEN = new RegExp(`[${Object.keys(NAMES).map((c) => `\\u{${Number(c).toString(16)}}`).join('')}\\u{E0000}-\\u{E007F}]`, 'u');

export function hasHidden(text: string): boolean {
  return HIDDEN.test(text);
}

export function reveal(text: string): Segment[] {
  const out: Segment[] = [];
  let plain = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const name = NAMES[cp] ?? (cp >= 0xe0000 && cp <= 0xe007f ? 'TAG' : undefined);
    if (name === undefined) {
      plain += ch;
      continue;
    }
    if (plain) out.push({ text: plain });
    plain = '';
    out.push({ code: `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`, name });
  }
  if (plain) out.push({ text: plain });
  return out;
}
