import { createHash } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * A real upstream SMTP server for tests. It records what it receives and can be told, per
 * recipient, to accept or refuse with any reply, to stall after DATA, or to drop the connection.
 */
export interface Received {
  mailFrom: string;
  recipients: string[];
  raw: Buffer;
  /** SHA-256 (hex) and size of the message as received. */
  sha256: string;
  size: number;
  at: number;
}

export type RcptRule = (address: string) => 'accept' | { code: number; message: string };

export class Sink {
  received: Received[] = [];
  rcpt: RcptRule = () => 'accept';
  /** What happens at the end of DATA. */
  data: 'accept' | 'stall' | 'drop' | { code: number; message: string } = 'accept';
  connections = 0;
  /** `hash` keeps only the digest and size of each message (for very big mail). */
  keep: 'raw' | 'hash' = 'raw';
  #server: SMTPServer;
  #waiters: Array<() => void> = [];
  #sockets = new Set<Socket>();
  port = 0;

  constructor(opts: { auth?: { user: string; pass: string } } = {}) {
    this.#server = new SMTPServer({
      logger: false,
      disableReverseLookup: true,
      authOptional: !opts.auth,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      hideENHANCEDSTATUSCODES: false,
      size: 1024 * 1024 * 1024,
      onConnect: (_s, cb) => {
        this.connections++;
        cb();
      },
      onAuth: (auth, _s, cb) => {
        if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return cb(null, { user: auth.username });
        cb(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
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
          });
          cb(null, 'OK sink');
          for (const w of this.#waiters.splice(0)) w();
        });
      },
    });
    this.#server.server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.#server.server.address() as AddressInfo).port;
    return this;
  }

  url(params = 'tls=none', auth = ''): URL {
    return new URL(`smtp://${auth}127.0.0.1:${this.port}?${params}`);
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
