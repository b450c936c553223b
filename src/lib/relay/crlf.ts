import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;

/**
 * Rewrites bare LF and bare CR as CRLF (RFC 5321 2.3.8), across chunk boundaries, and counts
 * the bytes it lets through. Past `limit` bytes it passes nothing more and sets `exceeded`, so an
 * oversize mail is read to its end (the SMTP dialogue needs that) without being stored.
 */
export class CrlfNormalizer extends Transform {
  bytes = 0;
  exceeded = false;
  #pendingCr = false;
  readonly #limit: number;

  constructor(limit = Number.POSITIVE_INFINITY) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.#normalize(chunk);
    this.#emit(out);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.#pendingCr) this.#emit(Buffer.from([CR, LF]));
    this.#pendingCr = false;
    cb();
  }

  #emit(buf: Buffer): void {
    if (buf.length === 0 || this.exceeded) return;
    this.bytes += buf.length;
    if (this.bytes > this.#limit) {
      this.exceeded = true;
      return;
    }
    this.push(buf);
  }

  #normalize(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const parts: Buffer[] = [];
    let start = 0;
    let i = 0;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      parts.push(Buffer.from([CR, LF]));
      if (chunk[0] === LF) start = i = 1;
    }
    const n = chunk.length;
    for (;;) {
      const cr = chunk.indexOf(CR, i);
      const lf = chunk.indexOf(LF, i);
      if (cr === -1 && lf === -1) break;
      if (lf !== -1 && (cr === -1 || lf < cr)) {
        // A bare LF (a CRLF's LF is consumed together with its CR below).
        parts.push(chunk.subarray(start, lf), CRLF);
        start = i = lf + 1;
        continue;
      }
      // A CR: CRLF stays as it is; a CR at the end waits for the next chunk.
      if (cr === n - 1) {
        parts.push(chunk.subarray(start, cr));
        this.#pendingCr = true;
        start = i = n;
        break;
      }
      if (chunk[cr + 1] === LF) {
        i = cr + 2;
        continue;
      }
      parts.push(chunk.subarray(start, cr), CRLF);
      start = i = cr + 1;
    }
    if (start === 0) return chunk;
    if (start < n) parts.push(chunk.subarray(start));
    return Buffer.concat(parts);
  }
}

const CRLF = Buffer.from([CR, LF]);
