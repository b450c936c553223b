import { Writable } from 'node:stream';
import addressparser from 'nodemailer/lib/addressparser';
import { Splitter, type MimeNode, type SplitterChunk } from 'mailsplit';
import type { AddressSummary, AttachmentSummary, MailSummary } from '../server/db/schema.js';
import { decodeEncodedWords, decodeHeaderValue, headerBytesToText, sanitizeText, splitHeaderBlock } from './header-text.js';

/** The root header block kept with a mail (for the detail view and the DSN) is capped at this. */
export const MAX_STORED_HEADER_BYTES = 64 * 1024;
const MAX_ADDRESSES = 200;
const MAX_ATTACHMENTS = 500;

export interface ParsedMail {
  headers: Buffer;
  subject: string;
  summary: MailSummary;
  /** Auto-Submitted other than "no", or a multipart/report: never answered with an error mail. */
  automatic: boolean;
}

interface Part {
  node: MimeNode;
  encodedBytes: number;
}

/**
 * Reads a message as it streams past and keeps only what the hold page shows: the root headers
 * (capped), subject, From, To, Cc, and the name, type and size of each attachment. The body is
 * never kept. A message whose MIME structure cannot be parsed still gets its headers read.
 */
export class MailSummarizer extends Writable {
  #splitter = new Splitter({ ignoreEmbedded: true, maxHeadSize: 256 * 1024 });
  #root: MimeNode | undefined;
  #rootHeaderBytes: Buffer | undefined;
  #parts: Part[] = [];
  #current: Part | undefined;
  #broken = false;
  #rawHead: Buffer[] = [];
  #rawHeadBytes = 0;

  constructor() {
    super();
    this.#splitter.on('data', (chunk: SplitterChunk) => this.#onChunk(chunk));
    this.#splitter.on('error', () => {
      this.#broken = true;
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.#root && this.#rawHeadBytes < MAX_STORED_HEADER_BYTES) {
      this.#rawHead.push(chunk);
      this.#rawHeadBytes += chunk.length;
    }
    if (this.#broken) return cb();
    if (this.#singlePart()) {
      // Past the headers of a single-part mail there is nothing more to learn than its size, so
      // the body need not go through the MIME parser line by line.
      this.#current!.encodedBytes += chunk.length;
      return cb();
    }
    // The splitter is consumed synchronously by the data listener, so it never buffers much.
    this.#splitter.write(chunk, () => cb());
  }

  #singlePart(): boolean {
    return this.#root !== undefined && !this.#root.multipart && this.#current?.node === this.#root;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#broken || this.#singlePart()) return cb();
    // Done when the splitter has handed out its last chunk, not merely taken its last input.
    let called = false;
    const done = () => {
      if (!called) (called = true), cb();
    };
    this.#splitter.once('end', done);
    this.#splitter.once('error', done);
    this.#splitter.end();
  }

  #onChunk(chunk: SplitterChunk): void {
    if (chunk.type === 'node') {
      if (chunk.root && !this.#root) {
        this.#root = chunk;
        this.#rootHeaderBytes = chunk.getHeaders();
      }
      if (!chunk.multipart) {
        this.#current = { node: chunk, encodedBytes: 0 };
        this.#parts.push(this.#current);
        if (this.#parts.length > MAX_ATTACHMENTS * 4) this.#parts.splice(1, 1);
      }
    } else if (chunk.type === 'body' && this.#current) {
      this.#current.encodedBytes += chunk.value.length;
    }
  }

  result(): ParsedMail {
    let headerBlock = this.#rootHeaderBytes ?? headOf(Buffer.concat(this.#rawHead));
    if (headerBlock.length > MAX_STORED_HEADER_BYTES) headerBlock = cutAtLine(headerBlock, MAX_STORED_HEADER_BYTES);
    const headers = splitHeaderBlock(headerBlock);
    const first = (name: string) => headers.find(([n]) => n === name)?.[1];
    const all = (name: string) => headers.filter(([n]) => n === name).map(([, v]) => v);
    const contentType = (first('content-type') ?? '').toLowerCase();
    const autoSubmitted = (first('auto-submitted') ?? 'no').trim().toLowerCase();
    const summary: MailSummary = {
      from: addresses(all('from')),
      to: addresses(all('to')),
      cc: addresses(all('cc')),
      messageId: sanitizeText(headerBytesToText(first('message-id') ?? '')).slice(0, 500),
      date: sanitizeText(headerBytesToText(first('date') ?? '')).slice(0, 200),
      attachments: this.#attachments(),
    };
    return {
      headers: headerBlock,
      subject: decodeHeaderValue(first('subject') ?? '').slice(0, 1000),
      summary,
      automatic: !autoSubmitted.startsWith('no') || /^\s*multipart\/report/.test(contentType),
    };
  }

  #attachments(): AttachmentSummary[] {
    const out: AttachmentSummary[] = [];
    for (const { node, encodedBytes } of this.#parts) {
      if (node.root && !node.filename) continue;
      const isAttachment = node.disposition === 'attachment' || Boolean(node.filename);
      if (!isAttachment) continue;
      out.push({
        name: sanitizeText(decodeEncodedWords(String(node.filename || ''))).slice(0, 255) || '(no name)',
        size: decodedSize(encodedBytes, node.encoding),
        type: sanitizeText(String(node.contentType || 'application/octet-stream')).slice(0, 100),
      });
      if (out.length >= MAX_ATTACHMENTS) break;
    }
    return out;
  }
}

/** base64 carries 3 bytes in 4 characters, plus a line break every 76; quoted-printable is a guess. */
function decodedSize(encoded: number, encoding: string | false): number {
  if (encoding === 'base64') return Math.floor((encoded * 76) / 78 / 4) * 3;
  return encoded;
}

function addresses(values: string[]): AddressSummary[] {
  const out: AddressSummary[] = [];
  for (const value of values) {
    const text = headerBytesToText(value);
    for (const a of flatten(addressparser(text))) {
      out.push({
        name: sanitizeText(decodeEncodedWords(a.name ?? '')).slice(0, 200),
        address: sanitizeText(a.address ?? '').slice(0, 320),
      });
      if (out.length >= MAX_ADDRESSES) return out;
    }
  }
  return out;
}

interface Parsed {
  name?: string;
  address?: string;
  group?: Parsed[];
}

function flatten(list: Parsed[]): Parsed[] {
  return list.flatMap((a) => (a.group ? flatten(a.group) : [a]));
}

function headOf(buf: Buffer): Buffer {
  const end = buf.indexOf('\r\n\r\n');
  return end === -1 ? buf : buf.subarray(0, end + 2);
}

function cutAtLine(buf: Buffer, max: number): Buffer {
  const end = buf.lastIndexOf('\r\n', max - 2);
  return buf.subarray(0, end === -1 ? max : end + 2);
}
