import { execFileSync } from 'node:child_process';
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, randomUUID, verify, type ECDH } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A push service on 127.0.0.1 that does what a real one does with a request: it checks the VAPID
 * authorisation (an ES256 JWT whose audience is this origin and that has not expired) and
 * decrypts the aes128gcm payload (RFC 8188 + RFC 8291) with the subscription's private key, which
 * it made itself, as a browser does. It answers 201, or whatever it is told (404, 410, 429, 500,
 * or nothing at all).
 */
export interface PushRequest {
  subscription: string;
  ttl: number;
  urgency: string | undefined;
  topic: string | undefined;
  jwt: { aud: string; exp: number; sub: string };
  vapidKey: string;
  /** The decrypted payload, parsed as JSON. */
  message: any;
  bytes: number;
  at: number;
}

export type Answer = number | { status: number; retryAfter?: number } | 'hang';

interface Keys {
  ecdh: ECDH;
  auth: Buffer;
}

export class PushServiceDouble {
  readonly received: PushRequest[] = [];
  /** Verification failures (these also get a 400/401/403 answer). */
  readonly errors: string[] = [];
  /** Answers to give, in order; once used up, `otherwise`. */
  answers: Answer[] = [];
  otherwise: Answer = 201;
  /** Only this VAPID public key is accepted, when set. */
  vapidKey: string | undefined;
  cert = '';
  port = 0;
  #server: https.Server | undefined;
  #keys = new Map<string, Keys>();
  #hanging = new Set<import('node:http').ServerResponse>();

  get origin(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'push-double-'));
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', '/CN=push-double', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      ], { stdio: 'ignore' });
      this.cert = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
      const key = readFileSync(path.join(dir, 'key.pem'), 'utf8');
      this.#server = https.createServer({ cert: this.cert, key }, (req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => this.#handle(req, res, Buffer.concat(parts)));
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.#server!.address() as AddressInfo).port;
    return this;
  }

  /** A new browser subscription, as PushSubscription.toJSON() gives it. */
  subscribe(): { endpoint: string; keys: { p256dh: string; auth: string } } {
    const id = randomUUID();
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.#keys.set(id, { ecdh, auth });
    return { endpoint: `${this.origin}/push/${id}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } };
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#server?.closeAllConnections();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
  }

  #handle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: Buffer): void {
    const fail = (status: number, why: string) => {
      this.errors.push(why);
      res.writeHead(status).end(why);
    };
    const id = /^\/push\/([0-9a-f-]+)$/.exec(req.url ?? '')?.[1];
    const keys = id ? this.#keys.get(id) : undefined;
    if (req.method !== 'POST' || !id || !keys) return fail(404, `no such subscription: ${req.method} ${req.url}`);

    const auth = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? '');
    if (!auth) return fail(401, `no VAPID authorization: ${req.headers.authorization}`);
    const [, jwtText, vapidKey] = auth as unknown as [string, string, string];
    if (this.vapidKey && vapidKey !== this.vapidKey) return fail(403, 'VAPID key is not the one the subscription was made with');
    let jwt: PushRequest['jwt'];
    try {
      jwt = verifyJwt(jwtText, vapidKey);
    } catch (err) {
      return fail(401, `VAPID JWT: ${(err as Error).message}`);
    }
    const now = Math.floor(Date.now() / 1000);
    if (jwt.aud !== this.origin) return fail(401, `VAPID JWT audience ${jwt.aud} is not ${this.origin}`);
    if (!(jwt.exp > now && jwt.exp <= now + 24 * 3600)) return fail(401, `VAPID JWT exp ${jwt.exp} is out of range`);
    if (!/^(mailto:|https:)/.test(jwt.sub)) return fail(401, `VAPID JWT sub ${jwt.sub} is not mailto: or https:`);

    if (req.headers['content-encoding'] !== 'aes128gcm') return fail(400, `content-encoding ${req.headers['content-encoding']}`);
    const ttl = Number(req.headers.ttl);
    if (!Number.isInteger(ttl) || ttl < 0) return fail(400, `TTL ${req.headers.ttl}`);
    let message: unknown;
    try {
      message = JSON.parse(decrypt(body, keys).toString('utf8'));
    } catch (err) {
      return fail(400, `payload: ${(err as Error).message}`);
    }
    const answer = this.answers.length ? this.answers.shift()! : this.otherwise;
    this.received.push({
      subscription: id,
      ttl,
      urgency: header(req.headers.urgency),
      topic: header(req.headers.topic),
      jwt,
      vapidKey,
      message,
      bytes: body.length,
      at: Date.now(),
    });
    if (answer === 'hang') {
      this.#hanging.add(res);
      return;
    }
    const { status, retryAfter } = typeof answer === 'number' ? { status: answer, retryAfter: undefined } : answer;
    res.writeHead(status, retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }).end();
  }
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** RFC 8292: an ES256 JWT signed by the application server's key `k` (an uncompressed P-256 point). */
function verifyJwt(token: string, k: string): PushRequest['jwt'] {
  const [h, p, s] = token.split('.');
  if (!h || !p || !s) throw new Error('not a JWT');
  const head = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string; typ?: string };
  if (head.alg !== 'ES256') throw new Error(`alg ${head.alg}`);
  const point = Buffer.from(k, 'base64url');
  if (point.length !== 65 || point[0] !== 4) throw new Error('k is not an uncompressed P-256 point');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  if (!ok) throw new Error('bad signature');
  return JSON.parse(Buffer.from(p, 'base64url').toString()) as PushRequest['jwt'];
}

/** RFC 8291 §3.4 key derivation, then the one aes128gcm record of RFC 8188. */
function decrypt(body: Buffer, keys: Keys): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idLength = body[20]!;
  const asPublic = body.subarray(21, 21 + idLength);
  const record = body.subarray(21 + idLength);
  if (idLength !== 65) throw new Error(`keyid of ${idLength} bytes, expected the sender's 65-byte public key`);
  if (record.length > rs) throw new Error('more than one record');
  const ecdhSecret = keys.ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), keys.ecdh.getPublicKey(), asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, keys.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('the last record does not end with the 0x02 delimiter');
  return padded.subarray(0, end);
}
