import { and, asc, eq } from 'drizzle-orm';
import type { Db } from '../server/db/client.js';
import { EXCLUSION_KINDS, exclusions, settings, users, type ExclusionKind } from '../server/db/schema.js';
import { inNetworks, parseNetwork, type Network } from './networks.js';

/**
 * What the relay decides about a mail before it stores it: may this client relay at all, who owns
 * the mail, does an exclusion send it on without a hold, and how long is the hold.
 * Exclusions and the hold time live in the database (the admin edits them on the web); they are
 * cached here and re-read when changed through this process, and every few seconds for changes
 * made by another process.
 */

export interface Exclusion {
  id: number;
  kind: ExclusionKind;
  value: string;
}

export class ExclusionError extends Error {}

const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const ADDRESS = /^[^\s@<>()",;:\\]{1,64}@[^\s@<>()",;:\\]{1,253}$/;

/** Validates and normalises an exclusion value: an address or domain, or an IP/CIDR. */
export function normalizeExclusion(kind: ExclusionKind, value: string): string {
  const v = value.trim().toLowerCase();
  if (kind === 'source_ip') {
    try {
      return parseNetwork(v).text;
    } catch (err) {
      throw new ExclusionError(`not an IP address or network: ${JSON.stringify(value)} (${(err as Error).message})`);
    }
  }
  const domain = v.startsWith('@') ? v.slice(1) : v;
  if (ADDRESS.test(v) || DOMAIN.test(domain)) return ADDRESS.test(v) ? v : domain;
  throw new ExclusionError(`not an address or domain: ${JSON.stringify(value)}`);
}

function addressMatches(address: string, list: ReadonlySet<string>): boolean {
  const a = address.toLowerCase();
  if (list.has(a)) return true;
  const at = a.lastIndexOf('@');
  return at !== -1 && list.has(a.slice(at + 1));
}

interface Snapshot {
  senders: Set<string>;
  recipients: Set<string>;
  networks: Network[];
  holdSeconds: number | undefined;
  /** Address -> user id, for the owner of mail sent without AUTH. */
  owners: Map<string, number>;
  loadedAt: number;
}

export class Policy {
  readonly #db: Db;
  readonly #relayNetworks: Network[];
  readonly #defaultHold: number;
  #snapshot: Snapshot | undefined;
  #loading: Promise<Snapshot> | undefined;
  static readonly REFRESH_MS = 5000;

  constructor(db: Db, relayNetworks: Network[], defaultHoldSeconds: number) {
    this.#db = db;
    this.#relayNetworks = relayNetworks;
    this.#defaultHold = defaultHoldSeconds;
  }

  isRelayClient(ip: string): boolean {
    return inNetworks(ip, this.#relayNetworks);
  }

  async #current(): Promise<Snapshot> {
    const s = this.#snapshot;
    if (s && Date.now() - s.loadedAt < Policy.REFRESH_MS) return s;
    this.#loading ??= this.#load().finally(() => (this.#loading = undefined));
    // A stale snapshot is good enough while a fresh one loads; never wait on the hot path twice.
    return s ?? this.#loading;
  }

  async #load(): Promise<Snapshot> {
    const [list, hold, people] = await Promise.all([
      this.#db.select().from(exclusions),
      this.#db.select({ value: settings.value }).from(settings).where(eq(settings.key, 'hold_seconds')),
      this.#db.select({ id: users.id, email: users.email }).from(users),
    ]);
    const snap: Snapshot = {
      senders: new Set(list.filter((e) => e.kind === 'sender').map((e) => e.value)),
      recipients: new Set(list.filter((e) => e.kind === 'recipient').map((e) => e.value)),
      networks: list.filter((e) => e.kind === 'source_ip').flatMap((e) => {
        try {
          return [parseNetwork(e.value)];
        } catch {
          return [];
        }
      }),
      holdSeconds: typeof hold[0]?.value === 'number' ? hold[0].value : undefined,
      owners: new Map(people.map((p) => [p.email, p.id])),
      loadedAt: Date.now(),
    };
    this.#snapshot = snap;
    return snap;
  }

  /** Forces the next decision to read the database (after an edit). */
  async refresh(): Promise<void> {
    this.#snapshot = undefined;
    await this.#current();
  }

  async holdSeconds(): Promise<number> {
    return (await this.#current()).holdSeconds ?? this.#defaultHold;
  }

  /** Which exclusion, if any, lets this mail go without a hold. */
  async exclusionFor(mailFrom: string, recipients: string[], clientIp: string): Promise<ExclusionKind | null> {
    const s = await this.#current();
    if (mailFrom && addressMatches(mailFrom, s.senders)) return 'sender';
    if (recipients.length > 0 && s.recipients.size > 0 && recipients.every((r) => addressMatches(r, s.recipients))) return 'recipient';
    if (s.networks.length > 0 && inNetworks(clientIp, s.networks)) return 'source_ip';
    return null;
  }

  /**
   * The authenticated user; else the user whose address is the envelope sender; else nobody
   * (admins see it). Users come from the cached snapshot: one added in another process owns such
   * mail within REFRESH_MS.
   */
  async ownerFor(authUserId: number | null, mailFrom: string): Promise<number | null> {
    if (authUserId !== null) return authUserId;
    if (!mailFrom) return null;
    return (await this.#current()).owners.get(mailFrom.toLowerCase()) ?? null;
  }

  async listExclusions(): Promise<Exclusion[]> {
    return this.#db.select({ id: exclusions.id, kind: exclusions.kind, value: exclusions.value }).from(exclusions).orderBy(asc(exclusions.kind), asc(exclusions.value));
  }

  async addExclusion(kind: ExclusionKind, value: string): Promise<Exclusion> {
    if (!EXCLUSION_KINDS.includes(kind)) throw new ExclusionError(`unknown exclusion kind ${kind}`);
    const normalized = normalizeExclusion(kind, value);
    await this.#db.insert(exclusions).values({ kind, value: normalized }).onConflictDoNothing();
    const [row] = await this.#db.select({ id: exclusions.id, kind: exclusions.kind, value: exclusions.value }).from(exclusions).where(eqKindValue(kind, normalized));
    await this.refresh();
    return row!;
  }

  async removeExclusion(id: number): Promise<boolean> {
    const rows = await this.#db.delete(exclusions).where(eq(exclusions.id, id)).returning({ id: exclusions.id });
    await this.refresh();
    return rows.length > 0;
  }

  async setHoldSeconds(value: number): Promise<void> {
    if (!Number.isInteger(value) || value < 30 || value > 600) throw new ExclusionError('the hold time must be a whole number of seconds between 30 and 600');
    await this.#db
      .insert(settings)
      .values({ key: 'hold_seconds', value, updatedAt: new Date() })
      .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: new Date() } });
    await this.refresh();
  }
}

function eqKindValue(kind: ExclusionKind, value: string) {
  return and(eq(exclusions.kind, kind), eq(exclusions.value, value));
}
