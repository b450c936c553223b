import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection';

/**
 * smtp-server waits a fixed 100 ms before it greets a new connection, to catch spam bots that
 * talk before the greeting. That check is for a public MX; mailhold's clients are its own office
 * mailers, and the pause caps one session at about ten mails a second. For clients inside
 * RELAY_NETWORKS the greeting goes out at once; everyone else keeps the early-talker check.
 *
 * This replaces SMTPServer.connect() with the same steps except the init delay. It leans on
 * SMTPConnection's `_setListeners` and `connectionReady`, which is why smtp-server is pinned to an
 * exact version, and test/integration/greeting.test.ts fails if an upgrade changes the behaviour.
 */
export class PromptSMTPServer extends SMTPServer {
  readonly #greetAtOnce: (remoteAddress: string) => boolean;

  constructor(options: SMTPServerOptions, greetAtOnce: (remoteAddress: string) => boolean) {
    super(options);
    this.#greetAtOnce = greetAtOnce;
  }

  override connect(socket: Socket, socketOptions?: Record<string, unknown>): void {
    const remote = String(socketOptions?.remoteAddress ?? socket.remoteAddress ?? '');
    if (!this.#greetAtOnce(remote)) return super.connect(socket, socketOptions as never);
    const connection = new SMTPConnection(this, socket, socketOptions as never);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    connection._setListeners(() => {
      const max = this.options.maxClients;
      if (max && this.connections.size > max) {
        connection.send(421, `${connection.name} Too many connected clients, try again in a moment`, false);
        return;
      }
      connection.connectionReady();
    });
  }
}
