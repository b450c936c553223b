import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The server's secret: SECRET_KEY when set, else a random key generated once into
 * DATA_DIR/secret.key (mode 0600) and kept. Several processes on one PostgreSQL must share it:
 * set SECRET_KEY for them. Purposes get their own derived keys, so that a token signed for one
 * use can never be read as another.
 */
export function loadSecret(secretKey: string | undefined, dataDir: string): Buffer {
  if (secretKey) return Buffer.from(secretKey, 'utf8');
  const file = path.join(dataDir, 'secret.key');
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return key;
}

/** A 32-byte key for one purpose ("push-action-token", "upstream-credentials", "session"...). */
export function deriveKey(secret: Buffer, purpose: string): Buffer {
  return createHash('sha256').update(`mailhold:${purpose}:`).update(secret).digest();
}
