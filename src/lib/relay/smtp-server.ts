import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection';

/**
 * smtp-server with two changes for mailhold, both on the connection it creates:
 *
 * - It waits a fixed 100 ms before it greets a new connection, to catch spam bots that talk
 *   before the greeting. That check is for a public MX; mailhold's clients are its own office
 *   mailers, and the pause caps one session at about ten mails a second. For clients inside
 *   RELAY_NETWORKS the greeting goes out at once; everyone else keeps the early-talker check.
 * - A session that may not authenticate in cleartext (AUTH in its `disabledCommands`, set by the
 *   intake) hears `538 5.7.11` for AUTH before TLS, as RFC 4954 asks, instead of the
 *   library's "500 command not recognized"; EHLO still leaves AUTH out until TLS is up.
 *
 * This replaces SMTPServer.connect() with the same steps. It leans on SMTPConnection's
 * `_setListeners`, `connectionReady`, `_onCommand` and `_nextHandler`, which is why smtp-server is
 * pinned to an exact version; test/integration/greeting.test.ts and tls.test.ts fail if an upgrade
 * changes the behaviour.
 */
class MailholdConnection extends SMTPConnection {
  override _onCommand(command: Buffer, callback?: () => void): void {
    const name = (command || '').toString().split(' ')[0]!.toUpperCase();
    const inExchange = this._nextHandler !== false;
    if (name === 'AUTH' && !inExchange && !this.secure && this._ready && !this._upgrading && this.#cleartextAuthRefused()) {
      this.send(538, '5.7.11 Encryption required for requested authentication mechanism: use STARTTLS first', false);
      setImmediate(() => callback?.());
      return;
    }
    super._onCommand(command, callback);
  }

  #cleartextAuthRefused(): boolean {
    const disabled = this.session.disabledCommands;
    return Array.isArray(disabled) && disabled.some((c) => String(c).toUpperCase() === 'AUTH');
  }
}

export class PromptSMTPServer extends SMTPServer {
  readonly #greetAtOnce: (remoteAddress: string) => boolean;

  constructor(options: SMTPServerOptions, greetAtOnce: (remoteAddress: string) => boolean) {
    super(options);
    this.#greetAtOnce = greetAtOnce;
  }

  override connect(socket: Socket, socketOptions?: Record<string, unknown>): void {
    const remote = String(socketOptions?.remoteAddress ?? socket.remoteAddress ?? '');
    const connection = new MailholdConnection(this, socket, socketOptions as never);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    if (!this.#greetAtOnce(remote)) return connection.init();
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
