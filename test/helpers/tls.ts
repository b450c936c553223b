import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generate } from 'selfsigned';

/**
 * A certificate authority made for one test file, and server certificates it signs, written to
 * a temporary directory so that they can be named in TLS_CERT/TLS_KEY, `?ca=` and swaks.
 */
export interface Issued {
  key: Buffer;
  cert: Buffer;
  keyFile: string;
  certFile: string;
}

export class TestCa {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'mailhold-ca-'));
  readonly caFile = path.join(this.dir, 'ca.pem');
  #ca: { key: string; cert: string } | undefined;
  #count = 0;

  get cert(): Buffer {
    return Buffer.from(this.#ca!.cert);
  }

  async init(): Promise<this> {
    const pems = await generate([{ name: 'commonName', value: 'mailhold test CA' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    });
    this.#ca = { key: pems.private, cert: pems.cert };
    writeFileSync(this.caFile, pems.cert);
    return this;
  }

  /** A server certificate for localhost, 127.0.0.1 and ::1 (or the names given), signed by this CA. */
  async issue(o: { dns?: string[]; ips?: string[]; selfSigned?: boolean } = {}): Promise<Issued> {
    const dns = o.dns ?? ['localhost'];
    const ips = o.ips ?? ['127.0.0.1', '::1'];
    const pems = await generate([{ name: 'commonName', value: dns[0] ?? ips[0] ?? 'server' }], {
      keySize: 2048,
      algorithm: 'sha256',
      ...(o.selfSigned ? {} : { ca: this.#ca! }),
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [...dns.map((value) => ({ type: 2 as const, value })), ...ips.map((ip) => ({ type: 7 as const, ip }))] },
      ],
    });
    const n = ++this.#count;
    const keyFile = path.join(this.dir, `server-${n}.key`);
    const certFile = path.join(this.dir, `server-${n}.pem`);
    writeFileSync(keyFile, pems.private, { mode: 0o600 });
    writeFileSync(certFile, pems.cert);
    return { key: Buffer.from(pems.private), cert: Buffer.from(pems.cert), keyFile, certFile };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
