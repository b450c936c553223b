import { createHash } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * A real upstream SMTP server for tests. It records what it receives and can be told, per
 * recipient, to accept or refuse with any reply, to stall after DATA, or to drop the connection.
 * With `tls` it offers STARTTLS (or, with `secure`, speaks implicit TLS); it records every AUTH
 * and MAIL FROM with whether the session was encrypted, so a test can prove nothing went in clear.
 */
export interface Received {
  mailFrom: string;
  recipients: string[];
  raw: Buffer;
  /** SHA-256 (hex) and size of the message as received. */
  sha256: string;
  size: number;
  at: number;
  /** The login the session used, if any. */
  user: string | undefined;
  secure: boolean;
}

export interface SinkOptions {
  /** One account (the relay's own login). */
  auth?: { user: string; pass: string };
  /** Several accounts, login -> password (AUTH_MODE=upstream users). */
  accounts?: Record<string, string>;
  tls?: { key: Buffer; cert: Buffer };
  /** Implicit TLS instead of STARTTLS. */
  secure?: boolean;
  host?: string;
  /** The SIZE limit it announces (default 1 GiB). */
  size?: number;
}

export type RcptRule = (address: string) => 'accept' | { code: number; message: string };

export class Sink {
  received: Received[] = [];
  rcpt: RcptRule = () => 'accept';
  /** The reply to MAIL FROM, given the number of the transaction in its session (1, 2, ...). */
  mailFrom: (transaction: number) => 'accept' | { code: number; message: string } = () => 'accept';
  /** What happens at the end of DATA. */
  data: 'accept' | 'stall' | 'drop' | { code: number; message: string } = 'accept';
  connections = 0;
  /** The most sessions that were open at the same time. */
  mostOpen = 0;
  /** `hash` keeps only the digest and size of each message (for very big mail). */
  keep: 'raw' | 'hash' = 'raw';
  /** Every AUTH and MAIL FROM the sink saw, with whether TLS was up. */
  commands: Array<{ command: 'AUTH' | 'MAIL'; secure: boolean; user?: string }> = [];
  /** A reply for every AUTH instead of checking it (e.g. 454 for a provider in trouble). */
  authReply: { code: number; message: string } | undefined;
  #host: string;
  #server: SMTPServer;
  #waiters: Array<() => void> = [];
  #sockets = new Set<Socket>();
  port = 0;

  constructor(opts: SinkOptions = {}) {
    this.#host = opts.host ?? '127.0.0.1';
    const accounts: Record<string, string> = { ...opts.accounts, ...(opts.auth ? { [opts.auth.user]: opts.auth.pass } : {}) };
    const needsAuth = Object.keys(accounts).length > 0;
    this.#server = new SMTPServer({
      logger: false,
      disableReverseLookup: true,
      authOptional: !needsAuth,
      allowInsecureAuth: true,
      disabledCommands: opts.tls ? [] : ['STARTTLS'],
      ...(opts.tls ? { key: opts.tls.key, cert: opts.tls.cert, secure: Boolean(opts.secure), minVersion: 'TLSv1.2' as const } : {}),
      hideENHANCEDSTATUSCODES: false,
      size: opts.size ?? 1024 * 1024 * 1024,
      onConnect: (_s, cb) => {
        this.connections++;
        cb();
      },
      onAuth: (auth, session, cb) => {
        this.commands.push({ command: 'AUTH', secure: session.secure, user: auth.username });
        if (this.authReply) return cb(Object.assign(new Error(this.authReply.message), { responseCode: this.authReply.code }));
        const user = auth.username ?? '';
        if (needsAuth && Object.hasOwn(accounts, user) && accounts[user] === auth.password) return cb(null, { user });
        cb(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
      },
      onMailFrom: (_address, session, cb) => {
        this.commands.push({ command: 'MAIL', secure: session.secure, user: session.user as string | undefined });
        const rule = this.mailFrom((session as unknown as { transaction: number }).transaction);
        if (rule !== 'accept') return cb(Object.assign(new Error(rule.message), { responseCode: rule.code }));
        cb();
      },
      onRcptTo: (address, _s, cb) => {
        const rule = this.rcpt(address.address);
        if (rule === 'accept') return cb();
        cb(Object.assign(new Error(rule.message), { responseCode: rule.code }));
      },
      onData: (stream, session, cb) => {
        const parts: Buffer[] = [];
        const hash = createHash('sha256');
        let size = 0;
        stream.on('data', (c: Buffer) => {
          hash.update(c);
          size += c.length;
          if (this.keep === 'raw') parts.push(c);
        });
        stream.on('end', () => {
          const mode = this.data;
          if (mode === 'stall') return;
          if (mode === 'drop') {
            for (const s of this.#sockets) s.destroy();
            return;
          }
          if (mode !== 'accept') return cb(Object.assign(new Error(mode.message), { responseCode: mode.code }));
          this.received.push({
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            recipients: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(parts),
            sha256: hash.digest('hex'),
            size,
            at: Date.now(),
            user: session.user as string | undefined,
            secure: session.secure,
          });
          cb(null, 'OK sink');
          for (const w of this.#waiters.splice(0)) w();
        });
      },
    });
    this.#server.server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      this.mostOpen = Math.max(this.mostOpen, this.#sockets.size);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, this.#host, () => r()));
    this.port = (this.#server.server.address() as AddressInfo).port;
    return this;
  }

  url(params = 'tls=none', auth = '', scheme: 'smtp' | 'smtps' = 'smtp'): URL {
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    return new URL(`${scheme}://${auth}${host}:${this.port}?${params}`);
  }

  /** Resolves when at least `n` messages have arrived, or rejects after `timeoutMs`. */
  async waitFor(n: number, timeoutMs = 10_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`sink: expected ${n} messages, got ${this.received.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
