// The SMTP client for the benchmarks, in its own process (node:net, no library), so that the
// harness measures the server and not itself.
//
//   node smtp-client.mjs big PORT BYTES            one mail of BYTES, streamed with backpressure
//   node smtp-client.mjs bulk PORT COUNT SESSIONS PREFIX [BYTES]
//                                                  COUNT mails over SESSIONS concurrent sessions,
//                                                  several mails per connection, Subject PREFIX-n
// Prints one JSON line: big -> {sha256, bytes, dataStart, accepted, mibPerSec, reply};
// bulk -> {sent, errors, started, finished, mails: [{subject, reply, acceptedAt, dueAt}]}.
import { createHash } from 'node:crypto';
import net from 'node:net';

class Smtp {
  constructor(socket) {
    this.socket = socket;
    this.buf = '';
    this.waiters = [];
    socket.on('data', (d) => {
      this.buf += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', (e) => (this.error = e));
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static connect(port) {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Smtp(s)));
      s.once('error', reject);
    });
  }
  async reply() {
    for (;;) {
      for (let pos = 0, eol; (eol = this.buf.indexOf('\r\n', pos)) !== -1; pos = eol + 2) {
        const line = this.buf.slice(pos, eol);
        if (line[3] !== '-') {
          this.buf = this.buf.slice(eol + 2);
          return { code: Number(line.slice(0, 3)), text: line };
        }
      }
      if (this.closed) throw new Error(`connection closed (${this.error?.message ?? 'by server'})`);
      await new Promise((r) => this.waiters.push(r));
    }
  }
  async cmd(line, expect) {
    this.socket.write(`${line}\r\n`);
    const r = await this.reply();
    if (expect && Math.floor(r.code / 100) !== expect) throw new Error(`${line.split(' ')[0]}: ${r.text}`);
    return r;
  }
  write(chunk) {
    return this.socket.write(chunk) ? undefined : new Promise((r) => this.socket.once('drain', r));
  }
}

async function open(port) {
  const c = await Smtp.connect(port);
  const hello = await c.reply();
  if (hello.code !== 220) throw new Error(`greeting: ${hello.text}`);
  await c.cmd('EHLO bench.example', 2);
  return c;
}

const dueOf = (text) => Date.parse(/sends at (\S+)/.exec(text)?.[1] ?? '') || null;

async function big(port, bytes) {
  const header = Buffer.from(`From: bench@example.com\r\nTo: sink@example.org\r\nSubject: big-mail\r\nMessage-ID: <big-${Date.now()}@bench.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`);
  // A 1 MiB block of 78-byte lines; each block starts with its own number, so that a lost,
  // repeated or reordered block changes the digest.
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn\r\n';
  const block = Buffer.from(line.repeat(Math.ceil((1 << 20) / line.length)).slice(0, 1 << 20));
  const c = await open(port);
  await c.cmd(`MAIL FROM:<bench@example.com> SIZE=${bytes}`, 2);
  await c.cmd('RCPT TO:<sink@example.org>', 2);
  const go = await c.cmd('DATA', 3);
  if (go.code !== 354) throw new Error(`DATA: ${go.text}`);
  const hash = createHash('sha256');
  const dataStart = Date.now();
  const send = async (buf) => {
    hash.update(buf);
    await c.write(buf);
  };
  await send(header);
  let left = bytes - header.length;
  for (let n = 0; left > 0; n++) {
    const chunk = Buffer.from(block.subarray(0, Math.min(block.length, left)));
    const tag = Buffer.from(`block ${String(n).padStart(8, '0')}`);
    if (chunk.length >= tag.length + 2) tag.copy(chunk);
    if (left <= block.length) chunk.write('\r\n', chunk.length - 2); // the mail ends with CRLF
    left -= chunk.length;
    await send(chunk);
  }
  c.socket.write('.\r\n');
  const done = await c.reply();
  const accepted = Date.now();
  await c.cmd('QUIT').catch(() => {});
  c.socket.destroy();
  return { sha256: hash.digest('hex'), bytes, dataStart, accepted, mibPerSec: bytes / 1048576 / ((accepted - dataStart) / 1000), reply: done.text, ok: done.code === 250 };
}

async function bulk(port, count, sessions, prefix, bytes = 2000) {
  const pad = `${'x'.repeat(76)}\r\n`.repeat(Math.max(1, Math.floor(bytes / 78)));
  const mails = [];
  const errors = [];
  let next = 0;
  const perConnection = 100;
  const started = Date.now();
  const worker = async () => {
    while (next < count) {
      let c;
      try {
        c = await open(port);
        for (let k = 0; k < perConnection && next < count; k++) {
          const n = next++;
          const subject = `${prefix}-${n}`;
          await c.cmd('MAIL FROM:<bench@example.com>', 2);
          await c.cmd('RCPT TO:<sink@example.org>', 2);
          await c.cmd('DATA', 3);
          await c.write(`From: bench@example.com\r\nTo: sink@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@bench.example>\r\n\r\n${pad}.\r\n`);
          const r = await c.reply();
          if (r.code !== 250) errors.push(`${subject}: ${r.text}`);
          else mails.push({ subject, reply: r.text, acceptedAt: Date.now(), dueAt: dueOf(r.text) });
        }
        await c.cmd('QUIT').catch(() => {});
      } catch (e) {
        errors.push(String(e.message ?? e));
        if (errors.length > 100) throw new Error(`too many errors: ${errors.slice(0, 3).join('; ')}`);
      } finally {
        c?.socket.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: sessions }, worker));
  return { sent: mails.length, errors: errors.slice(0, 20), errorCount: errors.length, started, finished: Date.now(), mails };
}

const [mode, port, ...rest] = process.argv.slice(2);
const result = mode === 'big' ? await big(Number(port), Number(rest[0])) : await bulk(Number(port), Number(rest[0]), Number(rest[1]), rest[2], rest[3] ? Number(rest[3]) : undefined);
process.stdout.write(`${JSON.stringify(result)}\n`);
