import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { generate } from 'selfsigned';

/**
 * The certificate mailhold shows to mailers (STARTTLS and SMTPS). TLS_CERT/TLS_KEY when set;
 * otherwise a self-signed certificate generated at the first start and kept in
 * DATA_DIR/tls/selfsigned.pem, whose SHA-256 fingerprint is logged (and shown on the settings
 * page) so that a mailer can be told to trust exactly it.
 *
 * The files are checked every few seconds; a changed, complete pair (a renewed certificate) is
 * taken into use without a restart. A half-written or mismatched pair is ignored until it is
 * whole, so that a renewal that writes the key and the certificate one after the other never
 * leaves the listeners without a working certificate.
 */

export interface TlsPair {
  key: Buffer;
  cert: Buffer;
}

export interface CertificateInfo {
  /** SHA-256 of the DER certificate, as `AB:CD:...` (what `openssl x509 -fingerprint -sha256` prints). */
  fingerprint: string;
  selfSigned: boolean;
  /** The certificate file (TLS_CERT, or the generated one in the data directory). */
  file: string;
}

export interface ServerTlsOptions {
  certFile?: string;
  keyFile?: string;
  dataDir: string;
  /** The host name mailhold greets with; goes into the generated certificate. */
  name: string;
  log: Logger;
  /** How often the files are checked for a change. */
  watchMs?: number;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n-----END \1-----\r?\n?/g;

/** The SHA-256 fingerprint of the first certificate in a PEM text. */
export function fingerprintOf(certPem: Buffer | string): string {
  const text = certPem.toString();
  const block = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(text);
  if (!block) throw new Error('no certificate in the file');
  const der = Buffer.from(block[1]!.replace(/\s+/g, ''), 'base64');
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/** Throws unless the key and the certificate are valid PEM and belong together. */
export function checkPair(pair: TlsPair): void {
  createPrivateKey(pair.key);
  // OpenSSL refuses a certificate whose public key does not match the private key.
  createSecureContext({ key: pair.key, cert: pair.cert });
}

function splitPem(text: string): TlsPair {
  const blocks = [...text.matchAll(PEM_BLOCK)];
  const key = blocks.find((b) => b[1]!.endsWith('PRIVATE KEY'))?.[0];
  const certs = blocks.filter((b) => b[1] === 'CERTIFICATE').map((b) => b[0]);
  if (!key || certs.length === 0) throw new Error('the file must hold a private key and a certificate');
  return { key: Buffer.from(key), cert: Buffer.from(certs.join('')) };
}

/** A new self-signed certificate for `name` (and localhost, 127.0.0.1, ::1), valid ten years. */
export async function generateSelfSigned(name: string): Promise<TlsPair> {
  const now = new Date();
  const notAfter = new Date(now.getTime() + 10 * 365 * 24 * 3600_000);
  const names = [...new Set([name.toLowerCase(), 'localhost'])];
  const pems = await generate([{ name: 'commonName', value: name }, { name: 'organizationName', value: 'mailhold' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 3600_000),
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...names.map((value) => ({ type: 2 as const, value })), { type: 7 as const, ip: '127.0.0.1' }, { type: 7 as const, ip: '::1' }],
      },
    ],
  });
  return { key: Buffer.from(pems.private), cert: Buffer.from(pems.cert) };
}

type Listener = (pair: TlsPair, info: CertificateInfo) => void;

export class ServerTls {
  readonly #o: ServerTlsOptions;
  #pair: TlsPair | undefined;
  #info: CertificateInfo | undefined;
  #stamp = '';
  #badStamp = '';
  #listeners = new Set<Listener>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking = false;

  constructor(opts: ServerTlsOptions) {
    this.#o = opts;
  }

  get #files(): { cert: string; key: string } {
    if (this.#o.certFile && this.#o.keyFile) return { cert: this.#o.certFile, key: this.#o.keyFile };
    const file = path.join(this.#o.dataDir, 'tls', 'selfsigned.pem');
    return { cert: file, key: file };
  }

  get selfSigned(): boolean {
    return !(this.#o.certFile && this.#o.keyFile);
  }

  /** The pair in use. Throws before load(). */
  get current(): TlsPair {
    if (!this.#pair) throw new Error('[smtp] the TLS certificate is not loaded yet');
    return this.#pair;
  }

  get info(): CertificateInfo | undefined {
    return this.#info;
  }

  /** Reads the certificate (generating the self-signed one if there is none yet) and starts watching. */
  async load(): Promise<TlsPair> {
    if (this.selfSigned) await this.#ensureSelfSigned();
    const files = this.#files;
    const { pair, stamp } = await this.#read().catch((err: Error) => {
      throw new Error(`[smtp] TLS_CERT/TLS_KEY: cannot use ${files.cert}: ${err.message}`);
    });
    this.#use(pair, stamp, 'loaded');
    this.#timer ??= setInterval(() => void this.check(), this.#o.watchMs ?? 10_000);
    this.#timer.unref();
    return pair;
  }

  /** Is called with every new pair taken into use; returns the unsubscribe function. */
  onChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Looks at the files once; takes a changed, valid pair into use. */
  async check(): Promise<boolean> {
    if (this.#checking || !this.#pair) return false;
    this.#checking = true;
    try {
      const stamp = await this.#stampOf();
      if (stamp === this.#stamp || stamp === this.#badStamp) return false;
      let read: { pair: TlsPair; stamp: string };
      try {
        read = await this.#read();
      } catch (err) {
        // Often a renewal caught between writing the key and the certificate; the next look sees both.
        this.#badStamp = stamp;
        this.#o.log.warn({ err: (err as Error).message, file: this.#files.cert }, 'TLS certificate changed but is not usable (yet); keeping the one in use');
        return false;
      }
      this.#use(read.pair, read.stamp, 'reloaded');
      return true;
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message }, 'TLS certificate check failed');
      return false;
    } finally {
      this.#checking = false;
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #use(pair: TlsPair, stamp: string, verb: 'loaded' | 'reloaded'): void {
    this.#pair = pair;
    this.#stamp = stamp;
    this.#badStamp = '';
    this.#info = { fingerprint: fingerprintOf(pair.cert), selfSigned: this.selfSigned, file: this.#files.cert };
    this.#o.log.info({ ...this.#info }, `TLS certificate ${verb}, SHA-256 fingerprint ${this.#info.fingerprint}`);
    if (verb === 'reloaded') for (const l of this.#listeners) l(pair, this.#info);
  }

  async #stampOf(): Promise<string> {
    const files = this.#files;
    const parts = await Promise.all([...new Set([files.cert, files.key])].map((f) => stat(f)));
    return parts.map((s) => `${s.ino}:${s.size}:${s.mtimeMs}`).join('|');
  }

  async #read(): Promise<{ pair: TlsPair; stamp: string }> {
    const files = this.#files;
    const stamp = await this.#stampOf();
    let pair: TlsPair;
    if (files.cert === files.key) {
      pair = splitPem(await readFile(files.cert, 'utf8'));
    } else {
      const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
      pair = { cert, key };
    }
    checkPair(pair);
    return { pair, stamp };
  }

  async #ensureSelfSigned(): Promise<void> {
    const file = this.#files.cert;
    if (await stat(file).then(() => true, () => false)) return;
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const pair = await generateSelfSigned(this.#o.name);
    // One file for key and certificate, written aside and renamed into place: two processes
    // starting at once on one data directory end up with one pair, never with a mixed one.
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, Buffer.concat([pair.key, pair.cert]), { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
    this.#o.log.info({ file }, 'generated a self-signed TLS certificate');
  }
}
