import net from 'node:net';
import tls from 'node:tls';

/**
 * A bare SMTP client for tests that must see every reply line: what EHLO offers, the exact code
 * of a refusal, what happens to commands pipelined behind STARTTLS.
 */
export class RawSmtp {
  #socket: net.Socket | tls.TLSSocket;
  #buffer = '';
  #waiters: Array<() => void> = [];
  #closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#listen(socket);
  }

  static async connect(o: { port: number; host?: string; localAddress?: string; tls?: tls.ConnectionOptions }): Promise<RawSmtp> {
    const host = o.host ?? '127.0.0.1';
    const plain = net.connect({ port: o.port, host, localAddress: o.localAddress });
    const socket = o.tls ? tls.connect({ socket: plain, ...o.tls }) : plain;
    await new Promise<void>((resolve, reject) => {
      socket.once(o.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawSmtp(socket);
  }

  get socket(): net.Socket | tls.TLSSocket {
    return this.#socket;
  }

  #listen(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.#buffer += d.toString('latin1');
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', () => {});
  }

  /** The next complete reply (all its lines), e.g. ["250-hello", "250 SIZE 10"]. */
  async reply(timeoutMs = 5000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.#buffer.split('\r\n');
      const end = lines.findIndex((l) => /^\d{3} /.test(l) || /^\d{3}$/.test(l));
      if (end !== -1) {
        const reply = lines.slice(0, end + 1);
        this.#buffer = lines.slice(end + 1).join('\r\n');
        return reply;
      }
      if (this.#closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.#buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; unread: ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Anything received and not yet read as a reply. */
  get unread(): string {
    return this.#buffer;
  }

  write(text: string): void {
    this.#socket.write(text);
  }

  async command(line: string): Promise<string[]> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** After a 220 to STARTTLS: the TLS handshake on the same socket. */
  async startTls(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    if (this.#buffer) throw new Error(`plaintext left before the handshake: ${JSON.stringify(this.#buffer)}`);
    const plain = this.#socket as net.Socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tls.connect({ socket: plain, ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.#socket = secure;
    this.#listen(secure);
    return secure;
  }

  close(): void {
    this.#socket.destroy();
  }
}
