import { Splitter, type MimeNode, type SplitterChunk } from 'mailsplit';

/**
 * A text preview of a message body from its first bytes: the first text/plain part (else the
 * first text part of any kind, as source), transfer-decoded and charset-decoded. Always plain
 * text for the page to show as text; never HTML to render.
 */
export interface Preview {
  text: string;
  /** The part was cut short (only the start of the message was read). */
  truncated: boolean;
  /** The type of the part shown. */
  type: string;
}

const MAX_PREVIEW_CHARS = 20_000;
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

export async function textPreview(raw: Buffer, complete: boolean): Promise<Preview | null> {
  const parts: Array<{ node: MimeNode; body: Buffer[] }> = [];
  let current: { node: MimeNode; body: Buffer[] } | undefined;
  const splitter = new Splitter({ ignoreEmbedded: true, maxHeadSize: 256 * 1024 });
  splitter.on('data', (chunk: SplitterChunk) => {
    if (chunk.type === 'node') {
      current = undefined;
      const type = String(chunk.contentType || 'text/plain').toLowerCase();
      if (!chunk.multipart && type.startsWith('text/') && chunk.disposition !== 'attachment' && !chunk.filename) {
        current = { node: chunk, body: [] };
        parts.push(current);
      }
    } else if (chunk.type === 'body' && current) {
      current.body.push(chunk.value);
    }
  });
  const done = new Promise<void>((resolve) => {
    splitter.on('end', resolve);
    splitter.on('error', () => resolve());
  });
  splitter.end(raw);
  splitter.resume();
  await done;
  const part = parts.find((p) => String(p.node.contentType || 'text/plain').toLowerCase() === 'text/plain') ?? parts[0];
  if (!part) return null;
  const encoded = Buffer.concat(part.body);
  const bytes = transferDecode(encoded, String(part.node.encoding || '').toLowerCase());
  let text = charsetDecode(bytes, String(part.node.charset || 'utf-8'));
  // Keep line breaks and tabs; drop every other control character.
  text = text.replace(/\r\n?/g, '\n').replace(/\t/g, '    ').replace(CONTROL_BUT_NEWLINE, '');
  const isLast = parts.indexOf(part) === parts.length - 1;
  let truncated = !complete && isLast;
  if (text.length > MAX_PREVIEW_CHARS) {
    text = text.slice(0, MAX_PREVIEW_CHARS);
    truncated = true;
  }
  return { text, truncated, type: String(part.node.contentType || 'text/plain') };
}

function transferDecode(data: Buffer, encoding: string): Buffer {
  if (encoding === 'base64') return Buffer.from(data.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (encoding === 'quoted-printable') {
    const text = data.toString('latin1').replace(/=\r?\n/g, '');
    const out: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const hex = text[i] === '=' ? text.slice(i + 1, i + 3) : '';
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out.push(parseInt(hex, 16));
        i += 2;
      } else out.push(text.charCodeAt(i) & 0xff);
    }
    return Buffer.from(out);
  }
  return data;
}

function charsetDecode(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset.trim().toLowerCase()).decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}
