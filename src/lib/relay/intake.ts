import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Transform, Writable } from 'node:stream';
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
import type { TlsPair } from './tls.js';

/**
 * SMTP intake. A mail is answered `250` only after its bytes, its envelope and its due time have
 * committed; any failure to store it answers `451` so that the mailer keeps it and tries again.
 * Relaying is for authenticated sessions and for clients inside RELAY_NETWORKS; everyone else
 * gets `530 5.7.0` at MAIL FROM and nothing is stored. AUTH in cleartext is for RELAY_NETWORKS
 * only; everyone else gets it after STARTTLS, or at once on the implicit-TLS port (SMTPS_PORT).
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
  /** The certificate for STARTTLS and SMTPS; a new pair is taken into use for new handshakes. */
  tls?: { readonly current: TlsPair; onChange(listener: (pair: TlsPair) => void): () => void };
  /** Implicit TLS (SMTPS) listener on this port, on the same host. */
  smtpsPort?: number;
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
  /** A mail has committed, due at `dueAt` (tells the worker; keeps a pass-through login stored). */
  onStored(dueAt: number, user: SessionUser | null): void;
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
  #smtps: SMTPServer | undefined;
  #unwatchTls: (() => void) | undefined;
  #draining = false;
  #inFlight = new Set<Promise<unknown>>();

  constructor(opts: IntakeOptions, deps: IntakeDeps) {
    this.#opts = opts;
    this.#d = deps;
  }

  get address(): AddressInfo | undefined {
    return (this.#server?.server.address() as AddressInfo | null) ?? undefined;
  }

  get smtpsAddress(): AddressInfo | undefined {
    return (this.#smtps?.server.address() as AddressInfo | null) ?? undefined;
  }

  async start(): Promise<AddressInfo> {
    const tls = this.#opts.tls;
    this.#server = await this.#listen(this.#options(false), this.#opts.port);
    if (tls && this.#opts.smtpsPort !== undefined) {
      this.#smtps = await this.#listen(this.#options(true), this.#opts.smtpsPort).catch(async (err: unknown) => {
        await this.#closeServer(this.#server!);
        throw err;
      });
    }
    // A renewed certificate is used for every handshake from now on; sessions keep theirs.
    this.#unwatchTls = tls?.onChange((pair) => {
      for (const s of [this.#server, this.#smtps]) s?.updateSecureContext({ key: pair.key, cert: pair.cert });
    });
    const addr = this.address!;
    this.#d.log.info({ host: addr.address, port: addr.port, smtps: this.smtpsAddress?.port, starttls: Boolean(tls) }, 'smtp listening');
    return addr;
  }

  async #listen(options: SMTPServerOptions, port: number): Promise<SMTPServer> {
    const server = new PromptSMTPServer(options, (ip) => this.#d.policy.isRelayClient(normalizeIp(ip) ?? ip));
    server.on('error', (err) => this.#d.log.warn({ err }, 'smtp error'));
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, this.#opts.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  #options(implicitTls: boolean): SMTPServerOptions {
    const tls = this.#opts.tls;
    const baseDisabled = tls ? [] : ['STARTTLS'];
    return {
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
      // TLS 1.2 and newer only; no client certificate is asked for.
      ...(tls ? { key: tls.current.key, cert: tls.current.cert, minVersion: 'TLSv1.2' as const, requestCert: false, secure: implicitTls } : {}),
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
  }

  async #auth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<SessionUser> {
    const ip = ipOf(session);
    // Passed on as typed: a provider login (AUTH_MODE=upstream) may care about case.
    const login = (auth.username ?? '').trim();
    const username = login.toLowerCase();
    const keys = [`ip:${ip}`, `user:${username}`];
    if (this.#d.throttle.retryAfter(keys) > 0) {
      throw smtpError(454, 'Too many failed logins, try again later');
    }
    // A checker that cannot decide (the upstream is down) throws a 454, which is no failed login.
    const user = await this.#d.authenticate(login, auth.password ?? '', ip);
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
      await pipe(stream, normalizer, tee);
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
      const result = await this.#d.states.submit(
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
        sink.takeRest(),
      );
      this.#d.onStored(result.dueAt, user);
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
    this.#unwatchTls?.();
    const servers = [this.#server, this.#smtps].filter((s): s is SMTPServer => s !== undefined);
    if (servers.length === 0) return;
    const deadline = new Promise((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([Promise.allSettled([...this.#inFlight]), deadline]);
    await Promise.all(servers.map((server) => this.#closeServer(server)));
    this.#server = undefined;
    this.#smtps = undefined;
  }

  async #closeServer(server: SMTPServer): Promise<void> {
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
  }
}

/**
 * stream.pipeline() without its per-call AbortController: the same wiring and error handling for
 * a fixed chain of three, which runs once per mail on the hot path.
 */
function pipe(source: NodeJS.ReadableStream & { destroy(err?: Error): void }, through: Transform, sink: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      source.destroy(err);
      through.destroy(err);
      sink.destroy(err);
      reject(err);
    };
    let ended = false;
    source.once('end', () => (ended = true));
    // A client that goes away in the middle of DATA closes the stream without ending it.
    source.once('close', () => ended || fail(new Error('the message was cut off')));
    source.once('error', fail);
    through.once('error', fail);
    sink.once('error', fail);
    sink.once('finish', () => {
      if (done) return;
      done = true;
      resolve();
    });
    source.pipe(through).pipe(sink);
  });
}

function ipOf(session: SMTPServerSession): string {
  return normalizeIp(session.remoteAddress) ?? session.remoteAddress;
}

