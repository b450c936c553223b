import type { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { SMTPConnectionOptions, SMTPConnectionSendInfo, SMTPEnvelope } from 'nodemailer/lib/smtp-connection';

/**
 * Sessions to the upstream, kept open and reused, at most `maxConnections` at once. Built on
 * nodemailer's SMTP client (SMTPConnection: TLS, STARTTLS, AUTH, PIPELINING, timeouts) without
 * its Mailer and message composer: mailhold sends stored bytes with a stored envelope, so that
 * layer only cost CPU, about two thirds of all delivery work at a thousand mails a second.
 *
 * A session is given back after each mail. One that an upstream refused a mail on is reset
 * (RSET) and kept; one with any other error is closed. A mail that failed on a reused session
 * before a byte of it was read (the upstream had closed the idle session) is tried once more on
 * another, as nodemailer's pool does.
 */
export interface PoolOptions {
  connection: SMTPConnectionOptions;
  auth?: { user: string; pass: string };
  maxConnections: number;
  /** A session is closed (QUIT) after this many mails. */
  maxMessages: number;
  /** An idle session is closed after this long. */
  idleMs: number;
}

interface Session {
  conn: SMTPConnection;
  messages: number;
  gone: boolean;
  idle?: ReturnType<typeof setTimeout>;
}

type Failure = Error & { code?: string; responseCode?: number };

export class UpstreamPool {
  readonly #o: PoolOptions;
  readonly #idle: Session[] = [];
  /** Sessions open or being opened. */
  #open = 0;
  readonly #waiting: Array<() => void> = [];
  #closed = false;

  constructor(opts: PoolOptions) {
    this.#o = opts;
  }

  /** `open` gives the message; it is called again for the one retry on another session. */
  async send(envelope: SMTPEnvelope, open: () => Readable, retried = false): Promise<SMTPConnectionSendInfo> {
    const session = await this.#acquire();
    const reused = session.messages > 0;
    session.messages++;
    const message = open();
    try {
      // SMTPConnection keeps its bookkeeping (rejected recipients, errors) on the envelope it is
      // given, so each attempt gets its own.
      const own = { ...envelope, to: Array.isArray(envelope.to) ? [...envelope.to] : envelope.to };
      const info = await new Promise<SMTPConnectionSendInfo>((resolve, reject) =>
        session.conn.send(own, message, (err, result) => (err ? reject(err) : resolve(result!))),
      );
      this.#release(session);
      return info;
    } catch (e) {
      const err = e as Failure;
      message.destroy();
      // No reply, or 421: the session is gone. A reply to this mail: the session is still good.
      const lost = err.responseCode === undefined || err.responseCode === 421;
      if (!lost && (err.code === 'EENVELOPE' || err.code === 'EMESSAGE') && !session.gone) this.#resetAndRelease(session);
      else this.#end(session);
      if (!retried && reused && lost && !message.readableDidRead) return this.send(envelope, open, true);
      throw err;
    }
  }

  /** Closes idle sessions now and every other one as it comes back; later sends fail. */
  close(): void {
    this.#closed = true;
    for (const s of this.#idle.splice(0)) this.#end(s);
    for (const wake of this.#waiting.splice(0)) wake();
  }

  async #acquire(): Promise<Session> {
    for (;;) {
      if (this.#closed) throw Object.assign(new Error('the delivery pool is closed'), { code: 'ECONNECTION' });
      const idle = this.#idle.pop();
      if (idle) {
        clearTimeout(idle.idle);
        if (!idle.gone) return idle;
        continue;
      }
      if (this.#open < this.#o.maxConnections) return this.#openSession();
      await new Promise<void>((wake) => this.#waiting.push(wake));
    }
  }

  async #openSession(): Promise<Session> {
    this.#open++;
    const conn = new SMTPConnection(this.#o.connection);
    const session: Session = { conn, messages: 0, gone: false };
    // Errors reach the callbacks below; the event must still have a listener, and an error
    // while idle means the session is no use any more.
    conn.on('error', () => this.#end(session));
    conn.once('end', () => this.#gone(session));
    try {
      await step(conn, (done) => conn.connect(done));
      const auth = this.#o.auth;
      if (auth) await step(conn, (done) => conn.login(auth, done));
      return session;
    } catch (err) {
      this.#end(session);
      throw err;
    }
  }

  #release(session: Session): void {
    if (session.gone) return;
    if (this.#closed || session.messages >= this.#o.maxMessages) {
      session.conn.quit();
      return;
    }
    session.idle = setTimeout(() => {
      const at = this.#idle.indexOf(session);
      if (at !== -1) this.#idle.splice(at, 1);
      session.conn.quit();
    }, this.#o.idleMs);
    session.idle.unref?.();
    this.#idle.push(session);
    this.#waiting.shift()?.();
  }

  #resetAndRelease(session: Session): void {
    session.conn.reset((err) => (err ? this.#end(session) : this.#release(session)));
  }

  /** Closes a session that is of no more use. */
  #end(session: Session): void {
    session.conn.close();
    this.#gone(session);
  }

  #gone(session: Session): void {
    if (session.gone) return;
    session.gone = true;
    clearTimeout(session.idle);
    const at = this.#idle.indexOf(session);
    if (at !== -1) this.#idle.splice(at, 1);
    this.#open--;
    this.#waiting.shift()?.();
  }
}

/**
 * One step of opening a session. A failure may come to the callback or only as an 'error' event
 * (a TLS handshake or STARTTLS that fails, a connection dropped during AUTH), or the connection
 * may just end: each of them settles the step.
 */
function step(conn: SMTPConnection, run: (done: (err?: Error | null) => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const settle = (err?: Error | null) => {
      conn.off('error', settle);
      conn.off('end', ended);
      if (err) reject(err);
      else resolve();
    };
    const ended = () => settle(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' }));
    // Ahead of the session's own listeners, which close it and so end it: the error comes first.
    conn.prependOnceListener('error', settle);
    conn.prependOnceListener('end', ended);
    run(settle);
  });
}
