import { randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { and, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Db, DbOrTx } from '../server/db/client.js';
import { contentChunks, mails, outbox } from '../server/db/schema.js';

/** Size of one stored piece of a message. */
export const CHUNK_BYTES = 512 * 1024;

/**
 * Where the bytes of a message go while it is being received. A message up to one chunk stays
 * in memory and is written in the same transaction as its mail row (one commit per small mail).
 * A bigger one is written chunk by chunk as it arrives, under a content id nothing names yet; it
 * becomes reachable only when the mail row that names it commits. If intake fails, the chunks are
 * deleted, and chunks that nobody names are swept after a grace period anyway (a crash).
 */
export class ContentSink extends Writable {
  readonly contentId = randomUUID();
  size = 0;
  #db: Db;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #seq = 0;

  constructor(db: Db) {
    super({ highWaterMark: CHUNK_BYTES });
    this.#db = db;
  }

  get spilled(): boolean {
    return this.#seq > 0;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.size += chunk.length;
    if (this.#pendingBytes < CHUNK_BYTES) return cb();
    const data = Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    const seq = this.#seq++;
    this.#db
      .insert(contentChunks)
      .values({ contentId: this.contentId, seq, data })
      .then(() => cb(), cb);
  }

  /** Writes what is still in memory, inside the transaction that commits the mail. */
  async commitRest(tx: DbOrTx): Promise<void> {
    if (this.#pendingBytes === 0 && this.#seq > 0) return;
    const data = Buffer.concat(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    await tx.insert(contentChunks).values({ contentId: this.contentId, seq: this.#seq++, data });
  }

  /** Forgets the message: nothing of it stays stored. */
  async discard(): Promise<void> {
    this.#pending = [];
    if (this.#seq > 0) await deleteContent(this.#db, this.contentId);
  }
}

/** Stores a whole message held in memory (error mails mailhold writes itself). */
export async function storeContent(tx: DbOrTx, data: Buffer, contentId: string = randomUUID()): Promise<string> {
  for (let seq = 0, off = 0; off < data.length || seq === 0; seq++, off += CHUNK_BYTES) {
    await tx.insert(contentChunks).values({ contentId, seq, data: data.subarray(off, off + CHUNK_BYTES) });
  }
  return contentId;
}

/** The message as a stream, read one chunk at a time so that memory stays flat for any size. */
export function readContent(db: DbOrTx, contentId: string): Readable {
  async function* chunks() {
    for (let seq = 0; ; seq++) {
      const [row] = await db
        .select({ data: contentChunks.data })
        .from(contentChunks)
        .where(and(eq(contentChunks.contentId, contentId), eq(contentChunks.seq, seq)));
      if (!row) {
        if (seq === 0) throw new Error(`content ${contentId} is missing`);
        return;
      }
      yield row.data;
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

