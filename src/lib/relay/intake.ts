import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { SMTPServer, SMTPServerAuthentication, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import type { Db } from '../server/db/client.js';
import type { Throttle } from '../server/auth/throttle.js';
import type { Clock } from './clock.js';
import { CrlfNormalizer } from './crlf.js';
import { normalizeIp } from './networks.js';
import type { Policy } from './policy.js';
import { PromptSMTPServer } from './smtp-server.js';
import type { MailStates } from './state.js';
import { ContentSink } from './store.js';
import { MailSummarizer } from './summary.js';

/**
 * SMTP intake. A mail is answered `250` only after its bytes, its envelope and its due time have
 * committed; any failure to store it answers `451` so that the mailer keeps it and tries again.
 * Relaying is for authenticated sessions and for clients inside RELAY_NETWORKS; everyone else
 * gets `530 5.7.0` at MAIL FROM and nothing is stored.
 */

export interface SessionUser {
  id: number;
  email: string;
  isAdmin: boolean;
}

export interface IntakeOptions {
  host: string;
  port: number;
  /** The name in the greeting and in the reports. */
  name: string;
  maxMessageBytes: number;
  tls?: { key: Buffer | string; cert: Buffer | string };
  /** Idle time before a silent client is dropped. */
  socketTimeoutMs?: number;
}

export interface IntakeDeps {
  db: Db;
  states: MailStates;
  policy: Policy;
  clock: Clock;
  log: Logger;
  throttle: Throttle;
  /** Checks SMTP AUTH credentials (local users, or the upstream in pass-through mode). */
  authenticate(email: string, password: string, clientIp: string): Promise<SessionUser | undefined>;
  /** Tells the worker a mail is due at `dueAt`. */
  onStored(dueAt: number): void;
  /** An error mail to an authenticated sender whose mail was refused as too big. */
  onTooBig(info: { user: SessionUser; mailFrom: string; recipients: string[]; headers: Buffer; subject: string; size: number; clientIp: string }): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export class Intake {
  readonly #opts: IntakeOptions;
  readonly #d: IntakeDeps;
  #server: SMTPServer | undefined;
  #draining = false;
  #inFlight = new Set<Promise<unknown>>();

  constructor(opts: IntakeOptions, deps: IntakeDeps) {
    this.#opts = opts;
    this.#d = deps;
  }

  get address(): AddressInfo | undefined {
    return (this.#server?.server.address() as AddressInfo | null) ?? undefined;
  }

  async start(): Promise<AddressInfo> {
    const baseDisabled = this.#opts.tls ? [] : ['STARTTLS'];
    const options: SMTPServerOptions = {
      name: this.#opts.name,
      banner: 'mailhold ESMTP',
      size: this.#opts.maxMessageBytes,
      rejectOversized: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: true,
      // Cleartext AUTH is offered per session: to relay networks, and to anyone after TLS.
      allowInsecureAuth: true,
      disabledCommands: baseDisabled,
      disableReverseLookup: true,
      useXClient: false,
      useXForward: false,
      useProxy: false,
      logger: false,
      socketTimeout: this.#opts.socketTimeoutMs ?? 5 * 60_000,
      closeTimeout: 30_000,
      ...(this.#opts.tls ? { key: this.#opts.tls.key, cert: this.#opts.tls.cert, minVersion: 'TLSv1.2' } : {}),
      onConnect: (session, cb) => {
        if (this.#draining) return cb(smtpError(421, 'mailhold is shutting down, try again shortly'));
        if (!session.secure && !this.#d.policy.isRelayClient(ipOf(session))) session.disabledCommands = [...baseDisabled, 'AUTH'];
        cb();
      },
      onSecure: (_socket, session, cb) => {
        session.disabledCommands = [...baseDisabled];
        cb();
      },
      onAuth: (auth, session, cb) => {
        this.#auth(auth, session).then(
          (user) => cb(null, { user }),
          (err: Error) => cb(err),
        );
      },
      onMailFrom: (_address, session, cb) => {
        if (!session.user && !this.#d.policy.isRelayClient(ipOf(session))) {
          return cb(smtpError(530, 'Authentication required: log in first, or send from a network allowed to relay'));
        }
        cb();
      },
      onRcptTo: (_address, session, cb) => {
        if (session.envelope.rcptTo.length >= 1000) return cb(smtpError(452, 'Too many recipients'));
        cb();
      },
      onData: (stream, session, cb) => {
        const work = this.#receive(stream, session).then(
          (reply) => cb(null, reply),
          (err: Error & { responseCode?: number }) => {
            if (!err.responseCode) this.#d.log.error({ err, session: session.id }, 'intake failed');
            cb(err.responseCode ? err : smtpError(451, 'Local error storing the message, try again later'));
          },
        );
        this.#inFlight.add(work);
        void work.finally(() => this.#inFlight.delete(work));
      },
    };
    const server = new PromptSMTPServer(options, (ip) => this.#d.policy.isRelayClient(normalizeIp(ip) ?? ip));
    server.on('error', (err) => this.#d.log.warn({ err }, 'smtp error'));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.address!;
    this.#d.log.info({ host: addr.address, port: addr.port }, 'smtp listening');
    return addr;
  }

  async #auth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<SessionUser> {
    const ip = ipOf(session);
    const username = (auth.username ?? '').trim().toLowerCase();
    const keys = [`ip:${ip}`, `user:${username}`];
    if (this.#d.throttle.retryAfter(keys) > 0) {
      throw smtpError(454, 'Too many failed logins, try again later');
    }
    const user = await this.#d.authenticate(username, auth.password ?? '', ip);
    if (!user) {
      this.#d.throttle.fail(keys);
      this.#d.log.info({ ip, user: username }, 'auth failed');
      throw smtpError(535, 'Authentication credentials invalid');
    }
    this.#d.throttle.succeed([`user:${username}`]);
    return user;
  }

  async #receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const received = this.#d.clock.now();
    const ip = ipOf(session);
    const user = (session.user as SessionUser | undefined) ?? null;
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const recipients = session.envelope.rcptTo.map((r) => r.address);
    const normalizer = new CrlfNormalizer(this.#opts.maxMessageBytes);
    const summarizer = new MailSummarizer();
    const sink = new ContentSink(this.#d.db);
    const tee = new Writable({
      highWaterMark: 512 * 1024,
      write(chunk: Buffer, _enc, cb) {
        // Both consumers pace the sender: a slow one must not let the other's input pile up.
        let waiting = 1;
        const done = () => --waiting === 0 && cb();
        if (!summarizer.write(chunk)) waiting++, summarizer.once('drain', done);
        if (!sink.write(chunk)) waiting++, sink.once('drain', done);
        done();
      },
      final(cb) {
        const summarized = new Promise<void>((resolve) => summarizer.end(() => resolve()));
        const stored = new Promise<void>((resolve, reject) => {
          sink.once('error', reject);
          sink.end(() => resolve());
        });
        Promise.all([summarized, stored]).then(() => cb(), cb);
      },
    });
    try {
      await pipeline(stream, normalizer, tee);
    } catch (err) {
      await sink.discard().catch(() => {});
      throw err;
    }
    if (stream.sizeExceeded || normalizer.exceeded) {
      await sink.discard().catch(() => {});
      const parsed = summarizer.result();
      this.#d.log.info({ ip, user: user?.email, size: normalizer.bytes }, 'too big');
      if (user) {
        await this.#d
          .onTooBig({ user, mailFrom, recipients, headers: parsed.headers, subject: parsed.subject, size: stream.byteLength, clientIp: ip })
          .catch((err: unknown) => this.#d.log.error({ err }, 'could not write the too-big notice'));
      }
      // smtp-server answers 552 5.3.4 itself for an oversize message (rejectOversized).
      throw smtpError(552, 'Message too big');
    }
    const parsed = summarizer.result();
    try {
      const [ownerId, excludedBy, holdSeconds] = await Promise.all([
        this.#d.policy.ownerFor(user?.id ?? null, mailFrom),
        this.#d.policy.exclusionFor(mailFrom, recipients, ip),
        this.#d.policy.holdSeconds(),
      ]);
      const id = randomUUID();
      const result = await this.#d.states.accept(
        {
          id,
          kind: 'mail',
          ownerId,
          authUser: user?.email ?? null,
          clientIp: ip,
          helo: String(session.hostNameAppearsAs || '').slice(0, 255),
          mailFrom,
          recipients,
          smtpUtf8: Boolean(session.envelope.smtpUtf8),
          body8bit: session.envelope.bodyType === '8bitmime',
          size: sink.size,
          contentId: sink.contentId,
          headers: parsed.headers,
          subject: parsed.subject,
          summary: parsed.summary,
          bounceAllowed: mailFrom !== '' && !parsed.automatic,
          receivedAt: received,
          holdSeconds,
          excludedBy,
        },
        (tx) => sink.commitRest(tx),
      );
      this.#d.onStored(result.dueAt);
      return `Held as ${id}, sends at ${new Date(result.dueAt).toISOString()}`;
    } catch (err) {
      await sink.discard().catch(() => {});
      throw err;
    }
  }

  /** Stops taking new connections: every new one is answered 421 until close(). */
  drain(): void {
    this.#draining = true;
  }

  /** Waits for messages being stored, then closes every connection. */
  async close(timeoutMs = 10_000): Promise<void> {
    this.drain();
    const server = this.#server;
    if (!server) return;
    const deadline = new Promise((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([Promise.allSettled([...this.#inFlight]), deadline]);
    await new Promise<void>((resolve) => {
      // Idle connections are told 421 and closed; close() waits at most closeTimeout for the rest.
      for (const conn of server.connections) {
        try {
          conn.send(421, 'mailhold is shutting down, try again shortly');
          conn.close();
        } catch {
          /* already gone */
        }
      }
      server.close(() => resolve());
    });
    this.#server = undefined;
  }
}

function ipOf(session: SMTPServerSession): string {
  return normalizeIp(session.remoteAddress) ?? session.remoteAddress;
}

export function readTls(cert: string, key: string): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

