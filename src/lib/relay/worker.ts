import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../server/db/client.js';
import { outbox } from '../server/db/schema.js';
import { clearAlert, raiseAlert } from './alerts.js';
import type { Clock, Timer } from './clock.js';
import type { Delivery } from './delivery.js';
import { buildReport, noticeMail } from './dsn.js';
import { LeaseLostError, type Claim, type ContentRows, type MailStates, type NewMail } from './state.js';
import { purgeHistory, readContent, sweepOrphanContent } from './store.js';

/**
 * The delivery worker. A timer is armed for the nearest due time (from the database, so a
 * restart resumes every hold and retry where it was), and a periodic sweep catches what other
 * processes queued and leases whose worker died. Due mail is claimed in batches with
 * FOR UPDATE SKIP LOCKED and delivered with bounded concurrency.
 */
export interface WorkerOptions {
  db: Db;
  states: MailStates;
  delivery: Delivery;
  clock: Clock;
  log: Logger;
  /** The name in error mails (Reporting-MTA). */
  reportingMta: string;
  /** Deliveries in flight, including those waiting for an upstream connection. */
  concurrency?: number;
  leaseMs?: number;
  sweepMs?: number;
  historyDays: number;
}

const HOUR = 3600_000;
/** A timer is never set closer than this: at most this much later than due, in exchange for
 *  claiming a burst of mails together rather than one statement per mail. */
const MIN_TIMER_MS = 10;

export class Worker {
  readonly id = `worker-${randomUUID()}`;
  readonly #o: Required<WorkerOptions>;
  #timer: Timer | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #inFlight = new Map<string, Promise<void>>();
  #polling = false;
  #again = false;
  /** The last claim took as many mails as it could: more may be due already. */
  #backlog = false;
  #stopped = true;
  #lastHousekeeping = 0;
  /** Alerts raised by an earlier run or process are cleared by the first good delivery. */
  #alertsMayBeUp = true;

  constructor(opts: WorkerOptions) {
    this.#o = { concurrency: 32, leaseMs: 120_000, sweepMs: 5_000, ...opts };
  }

  start(): void {
    this.#stopped = false;
    this.#sweep = setInterval(() => void this.#housekeeping(), this.#o.sweepMs);
    this.#sweep.unref();
    void this.#housekeeping();
  }

  /** A mail was stored (or released) that is due at `dueAt`. */
  notify(dueAt: number): void {
    if (this.#stopped) return;
    if (dueAt <= this.#o.clock.now()) return void this.poll();
    this.#arm(dueAt);
  }

  #arm(at: number): void {
    if (at >= this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.#o.clock.at(at, () => {
      this.#timerAt = Number.POSITIVE_INFINITY;
      void this.poll();
    });
  }

  /** Claims and starts delivering whatever is due, until nothing is or the worker is full. */
  async poll(): Promise<void> {
    if (this.#stopped) return;
    if (this.#polling) {
      this.#again = true;
      return;
    }
    this.#polling = true;
    let next: number | undefined | null = null;
    try {
      do {
        this.#again = false;
        const room = this.#o.concurrency - this.#inFlight.size;
        if (room <= 0) {
          this.#again = false;
          break;
        }
        const { claims, nextDue } = await this.#o.states.claim(this.id, this.#o.leaseMs, room);
        next = nextDue;
        for (const claim of claims) {
          const run = this.#deliver(claim).then((quiet) => {
            this.#inFlight.delete(claim.id);
            // A delivery that changed nothing else due (all sent) needs no new claim unless the
            // last one filled every free place, i.e. more may be waiting.
            if (!quiet || this.#backlog) void this.poll();
          });
          this.#inFlight.set(claim.id, run);
        }
        this.#backlog = claims.length === room;
        if (this.#backlog) this.#again = true;
      } while (this.#again && !this.#stopped);
      // The last claim told the next due time; a poll that found the worker full asks for it.
      if (next === null) next = await this.#o.states.nextDue();
      // Mails that fall due within a few milliseconds of each other go in one claim.
      if (next !== undefined && !this.#stopped) this.#arm(Math.max(next, this.#o.clock.now() + MIN_TIMER_MS));
    } catch (err) {
      this.#o.log.error({ err }, 'worker poll failed');
    } finally {
      this.#polling = false;
      if (this.#again && !this.#stopped) void this.poll();
    }
  }

  /** Resolves true when the mail was simply sent (nothing new is due because of it); never rejects. */
  async #deliver(claim: Claim): Promise<boolean> {
    const { db, states, delivery, log, clock } = this.#o;
    const renew = setInterval(() => {
      void states.renew(claim, this.id, this.#o.leaseMs).catch(() => {});
    }, Math.max(1000, this.#o.leaseMs / 3));
    renew.unref();
    try {
      if (!claim.contentId) throw new Error('the content of this mail is gone');
      const { contentId, content } = claim;
      const open = () => (content ? Readable.from(content, { objectMode: false }) : readContent(db, contentId));
      const { outcomes, alerts } = await delivery.send(claim, open);
      const now = new Date(clock.now());
      for (const a of alerts) await raiseAlert(db, a.kind, a.message, now).catch(() => {});
      if (alerts.length) this.#alertsMayBeUp = true;
      else if (this.#alertsMayBeUp && outcomes.some((o) => o.result === 'sent')) {
        // The upstream works again: its alerts go. Only after an alert, not on every delivery.
        this.#alertsMayBeUp = false;
        await clearAlert(db, 'upstream_auth').catch(() => {});
        await clearAlert(db, 'upstream_tls').catch(() => {});
      }
      const toOutbox = delivery.kind === 'outbox';
      if (!toOutbox && outcomes.every((o) => o.result === 'sent')) {
        await states.finishSent(claim, outcomes[0]?.reply ?? '');
        return true;
      }
      // A retry time or an error mail may now be due: the caller claims again.
      await states.finish(claim, outcomes, {
        keepContent: toOutbox,
        beforeCommit: toOutbox ? (tx) => this.#intoOutbox(tx, claim, now) : undefined,
        notice: (failed) => this.#notice(claim, failed, now),
      });
      return false;
    } catch (err) {
      if (err instanceof LeaseLostError) log.warn({ mail: claim.id }, err.message);
      // Give it back: the lease expires and the sweep puts it in the queue again.
      else log.error({ err, mail: claim.id }, 'delivery failed unexpectedly');
      return false;
    } finally {
      clearInterval(renew);
    }
  }

  async #intoOutbox(tx: DbOrTx, claim: Claim, now: Date): Promise<void> {
    await tx.insert(outbox).values({
      id: randomUUID(),
      mailId: claim.id,
      mailFrom: claim.mailFrom,
      recipients: claim.recipients.map((r) => r.address),
      subject: claim.subject,
      size: claim.size,
      contentId: claim.contentId!,
      deliveredAt: now,
    });
  }

  async #notice(claim: Claim, failed: Array<{ address: string; reply: string }>, now: Date): Promise<{ mail: NewMail; content: ContentRows } | null> {
    if (claim.kind !== 'mail' || !claim.bounceAllowed || !claim.mailFrom) return null;
    const input = {
      reportingMta: this.#o.reportingMta,
      to: claim.mailFrom,
      originalId: claim.id,
      originalSubject: claim.subject,
      arrivalDate: claim.receivedAt,
      failed,
      originalHeaders: claim.headers,
      reason: 'failed' as const,
      now,
    };
    return noticeMail(input, await buildReport(input), claim.ownerId);
  }

  async #housekeeping(): Promise<void> {
    if (this.#stopped) return;
    const { states, db, log, clock } = this.#o;
    try {
      const expired = await states.expireLeases();
      if (expired) log.warn({ count: expired }, 'leases expired; mails back in the queue');
      await this.poll();
      if (Date.now() - this.#lastHousekeeping > HOUR) {
        this.#lastHousekeeping = Date.now();
        const now = clock.now();
        const orphans = await sweepOrphanContent(db, new Date(now - HOUR));
        const purged = await purgeHistory(db, new Date(now - this.#o.historyDays * 24 * HOUR));
        if (orphans || purged.mails || purged.outbox) log.info({ orphans, ...purged }, 'housekeeping');
      }
    } catch (err) {
      log.error({ err }, 'housekeeping failed');
    }
  }

  /** Stops claiming, lets deliveries in flight finish (up to `timeoutMs`), gives back the rest. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    if (this.#sweep) clearInterval(this.#sweep);
    const deadline = new Promise((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([Promise.allSettled([...this.#inFlight.values()]), deadline]);
    const released = await this.#o.states.releaseLeases(this.id).catch(() => 0);
    if (released) this.#o.log.info({ count: released }, 'gave back unfinished deliveries');
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }
}
