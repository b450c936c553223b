import { randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { and, eq, inArray, lt, sql } from 'drizzle-orm';
import { rows, type Db, type DbOrTx } from '../server/db/client.js';
import { garbageBudget } from './gc.js';
import { contentChunks, mails, outbox } from '../server/db/schema.js';

/**
 * A message is stored as rows of at most CHUNK_BYTES, read BATCH_BYTES at a time. Rows are kept
 * small so that each travels as a short-lived value the garbage collector frees cheaply (a big
 * mail then streams through a flat heap); batches keep the round trips few.
 */
export const CHUNK_BYTES = 64 * 1024;
export const BATCH_BYTES = 512 * 1024;
const ROWS_PER_BATCH = BATCH_BYTES / CHUNK_BYTES;
/** Pieces smaller than this are gathered before they become a row. */
const MIN_ROW_BYTES = 32 * 1024;

/**
 * Where the bytes of a message go while it is being received. A message up to one batch stays
 * in memory and is written in the same transaction as its mail row (one commit per small mail).
 * A bigger one is streamed to the database as it arrives (PostgreSQL: one binary COPY for the
 * whole message; PGlite: a binary COPY per batch), under a content id nothing names yet; it
 * becomes reachable only when the mail row that names it commits. If intake fails, the rows are
 * deleted, and rows that nobody names are swept after a grace period anyway (a crash).
 */
export class ContentSink extends Writable {
  readonly contentId = randomUUID();
  size = 0;
  #db: Db;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #seq = 0;
  #rows: RowWriter | undefined;
  #budget = garbageBudget();

  constructor(db: Db) {
    super({ highWaterMark: BATCH_BYTES });
    this.#db = db;
  }

  get spilled(): boolean {
    return this.#rows !== undefined;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.size += chunk.length;
    if (!this.#rows && this.#pendingBytes <= BATCH_BYTES) return cb();
    this.#rows ??= openRowWriter(this.#db, this.contentId);
    this.#flush(false).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.#rows) return cb();
    this.#flush(true)
      .then(() => this.#rows!.end())
      .then(() => cb(), cb);
  }

  /** Hands whole rows to the writer; with `all`, the tail as well. */
  async #flush(all: boolean): Promise<void> {
    if (this.#pendingBytes < MIN_ROW_BYTES && !all) return;
    const data = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    for (const piece of split(data)) {
      if (piece.length === 0 && this.#seq > 0) continue;
      await this.#rows!.write(this.#seq++, piece);
    }
    this.#budget(data.length);
  }

  /**
   * What is still in memory, as rows for the transaction that commits the mail (none when the
   * message was streamed to the database already).
   */
  takeRest(): { contentId: string; firstSeq: number; pieces: Buffer[] } {
    if (this.#rows) return { contentId: this.contentId, firstSeq: this.#seq, pieces: [] };
    const pieces = split(Buffer.concat(this.#pending));
    this.#pending = [];
    this.#pendingBytes = 0;
    const firstSeq = this.#seq;
    this.#seq += pieces.length;
    return { contentId: this.contentId, firstSeq, pieces };
  }

  /** Forgets the message: nothing of it stays stored. */
  async discard(): Promise<void> {
    this.#pending = [];
    if (!this.#rows) return;
    this.#rows.abort();
    await deleteContent(this.#db, this.contentId);
  }
}

/** CHUNK_BYTES pieces (at least one, so that an empty message still has a row). */
function split(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += CHUNK_BYTES) out.push(data.subarray(off, off + CHUNK_BYTES));
  return out.length ? out : [data];
}

/** A whole message held in memory (an error mail mailhold writes) as rows for insertMails(). */
export function contentRows(contentId: string, data: Buffer): { contentId: string; firstSeq: number; pieces: Buffer[] } {
  return { contentId, firstSeq: 0, pieces: split(data) };
}

/** The message as a stream, read a batch at a time so that memory stays flat for any size. */
export function readContent(db: DbOrTx, contentId: string): Readable {
  const budget = garbageBudget();
  async function* chunks() {
    for (let seq = 0; ; seq += ROWS_PER_BATCH) {
      const batch = await rows<{ data: string }>(
        db,
        sql`select encode(${contentChunks.data}, 'base64') as data from ${contentChunks}
            where ${contentChunks.contentId} = ${contentId} and ${contentChunks.seq} >= ${seq} and ${contentChunks.seq} < ${seq + ROWS_PER_BATCH}
            order by ${contentChunks.seq}`,
      );
      if (batch.length === 0 && seq === 0) throw new Error(`content ${contentId} is missing`);
      for (const row of batch) {
        const data = Buffer.from(row.data, 'base64');
        budget(data.length);
        yield data;
      }
      if (batch.length < ROWS_PER_BATCH) return;
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

export async function readContentBuffer(db: DbOrTx, contentId: string, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of readContent(db, contentId)) {
    parts.push(chunk as Buffer);
    total += (chunk as Buffer).length;
    if (total >= maxBytes) break;
  }
  const all = Buffer.concat(parts);
  return all.length > maxBytes ? all.subarray(0, maxBytes) : all;
}

/**
 * How the bytes travel matters for big mail: both drivers send a bytea parameter as a hex string,
 * which doubles it and, in PGlite, is parsed slowly. Base64 text decoded by the server is a third
 * smaller and decoded natively on both sides; PGlite takes a binary COPY from a blob faster still.
 */
const COPY_SIGNATURE = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
const COPY_TRAILER = Buffer.from([0xff, 0xff]);

interface RowWriter {
  /** Resolves when the writer can take more. */
  write(seq: number, data: Buffer): Promise<void>;
  end(): Promise<void>;
  abort(): void;
}

function copyRowHead(id: Buffer, seq: number, length: number): Buffer {
  // PostgreSQL's binary COPY format: per row the field count, then each field's length and bytes.
  const head = Buffer.alloc(2 + 4 + 16 + 4 + 4 + 4);
  let o = head.writeInt16BE(3, 0);
  o = head.writeInt32BE(16, o);
  o += id.copy(head, o);
  o = head.writeInt32BE(4, o);
  o = head.writeInt32BE(seq, o);
  head.writeInt32BE(length, o);
  return head;
}

const COPY_SQL = 'copy content_chunks (content_id, seq, data) from stdin with (format binary)';

function openRowWriter(db: Db, contentId: string): RowWriter {
  const client = (db as unknown as { $client?: unknown }).$client;
  const id = Buffer.from(contentId.replace(/-/g, ''), 'hex');
  if (isPglite(client)) return pgliteRows(client, id);
  if (typeof client === 'function' && typeof (client as unknown as PostgresSql).unsafe === 'function') return postgresRows(client as unknown as PostgresSql, id);
  throw new Error('unknown database driver');
}

/** PostgreSQL: the whole message as one streamed binary COPY, with backpressure. */
function postgresRows(sql: PostgresSql, id: Buffer): RowWriter {
  const opening = sql.unsafe(COPY_SQL).writable();
  let stream: Writable | undefined;
  let failed: Error | undefined;
  const ready = opening.then((w) => {
    stream = w;
    w.on('error', (err: Error) => (failed = err));
    w.write(COPY_SIGNATURE);
    return w;
  });
  return {
    async write(seq, data) {
      const w = stream ?? (await ready);
      if (failed) throw failed;
      w.write(copyRowHead(id, seq, data.length));
      if (!w.write(data)) await new Promise<void>((resolve, reject) => {
        w.once('drain', resolve);
        w.once('error', reject);
      });
    },
    async end() {
      const w = await ready;
      if (failed) throw failed;
      await new Promise<void>((resolve, reject) => {
        w.once('error', reject);
        w.end(COPY_TRAILER, () => resolve());
      });
      if (failed) throw failed;
    },
    abort() {
      void ready.then((w) => w.destroy(new Error('message abandoned'))).catch(() => {});
    },
  };
}

/** PGlite cannot stream a COPY; it takes one from a blob, a batch of rows at a time. */
function pgliteRows(client: PGliteLike, id: Buffer): RowWriter {
  let parts: Buffer[] = [];
  let bytes = 0;
  const flush = async () => {
    if (parts.length === 0) return;
    const blob = new Blob([COPY_SIGNATURE, ...parts, COPY_TRAILER] as Uint8Array<ArrayBuffer>[]);
    parts = [];
    bytes = 0;
    await client.query(COPY_SQL.replace('stdin', `'/dev/blob'`), [], { blob });
  };
  return {
    async write(seq, data) {
      parts.push(copyRowHead(id, seq, data.length), data);
      bytes += data.length;
      if (bytes >= BATCH_BYTES) await flush();
    },
    end: flush,
    abort: () => {
      parts = [];
    },
  };
}

function isPglite(client: unknown): client is PGliteLike {
  return typeof client === 'object' && client !== null && typeof (client as PGliteLike).query === 'function' && typeof (client as PGliteLike).exec === 'function';
}

interface PostgresSql {
  unsafe(query: string): { writable(): Promise<Writable> };
}

interface PGliteLike {
  query(q: string, params: unknown[], opts: { blob: Blob }): Promise<unknown>;
  exec(q: string): Promise<unknown>;
}

export async function deleteContent(db: DbOrTx, contentId: string): Promise<void> {
  await db.delete(contentChunks).where(eq(contentChunks.contentId, contentId));
}

/**
 * Chunks older than `before` that no mail and no outbox entry names: left by a crash in the
 * middle of receiving a big message.
 */
export async function sweepOrphanContent(db: Db, before: Date): Promise<number> {
  const deleted = await db
    .delete(contentChunks)
    .where(
      and(
        lt(contentChunks.createdAt, before),
        sql`not exists (select 1 from ${mails} where ${mails.contentId} = ${contentChunks.contentId})`,
        sql`not exists (select 1 from ${outbox} where ${outbox.contentId} = ${contentChunks.contentId})`,
      ),
    )
    .returning({ id: contentChunks.contentId });
  return new Set(deleted.map((d) => d.id)).size;
}

/** Removes the history older than `before`: finished mails and outbox entries with their content. */
export async function purgeHistory(db: Db, before: Date): Promise<{ mails: number; outbox: number }> {
  return db.transaction(async (tx) => {
    const gone = await tx
      .delete(mails)
      .where(and(inArray(mails.state, ['discarded', 'sent', 'failed']), lt(mails.finishedAt, before)))
      .returning({ contentId: mails.contentId });
    const ids = gone.map((g) => g.contentId).filter((c): c is string => c !== null);
    if (ids.length) await tx.delete(contentChunks).where(inArray(contentChunks.contentId, ids));
    const old = await tx.delete(outbox).where(lt(outbox.deliveredAt, before)).returning({ contentId: outbox.contentId });
    if (old.length) await tx.delete(contentChunks).where(inArray(contentChunks.contentId, old.map((o) => o.contentId)));
    return { mails: gone.length, outbox: old.length };
  });
}

