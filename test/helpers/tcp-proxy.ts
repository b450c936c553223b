import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server. `cut()` drops every connection and refuses
 * new ones, as a database that has gone away does; `restore()` lets them through again.
 */
export class TcpProxy {
  port = 0;
  #server: net.Server;
  #sockets = new Set<net.Socket>();
  #cut = false;

  constructor(targetHost: string, targetPort: number) {
    this.#server = net.createServer((client) => {
      if (this.#cut) return client.destroy();
      const upstream = net.connect(targetPort, targetHost);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.destroy();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
