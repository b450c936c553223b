// The upstream for the benchmarks, in its own process so that its work is not counted against
// the harness: a plain smtp-server that accepts everything, hashes each message (SHA-256) and
// records when it arrived and its Subject. It prints {"port":N} once listening; over IPC it
// answers "report" with every record so far and "count" with how many.
import { createHash } from 'node:crypto';
import { SMTPServer } from 'smtp-server';

let records = [];
const server = new SMTPServer({
  logger: false,
  disableReverseLookup: true,
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  size: 1024 * 1024 * 1024,
  onData(stream, _session, cb) {
    const hash = createHash('sha256');
    let size = 0;
    let head = '';
    stream.on('data', (c) => {
      hash.update(c);
      size += c.length;
      if (head.length < 4096) head += c.subarray(0, 4096).toString('latin1');
    });
    stream.on('end', () => {
      const subject = /^Subject: *(.*?)\r?$/im.exec(head)?.[1] ?? '';
      records.push({ subject, at: Date.now(), size, sha256: hash.digest('hex') });
      cb(null, 'OK sink');
    });
  },
});
server.on('error', (e) => process.stderr.write(`sink: ${e.message}\n`));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.server.address().port })}\n`);
});
process.on('message', (m) => {
  if (m === 'report') process.send({ records });
  else if (m === 'count') process.send({ count: records.length });
  else if (m === 'close') server.close(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
