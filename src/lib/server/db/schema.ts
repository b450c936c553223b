import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/** Raw bytes. Drivers hand back Buffer (postgres.js) or Uint8Array (PGlite); both read as Buffer. */
export const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  toDriver: (v) => v,
  fromDriver: (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)),
});

const tstz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const users = pgTable('users', {
  id: serial('id').primaryKey(),
  email: text('email').notNull().unique(),
  passwordHash: text('password_hash'),
  isAdmin: boolean('is_admin').notNull().default(false),
  createdAt: tstz('created_at').notNull().defaultNow(),
});

export const MAIL_STATES = ['held', 'queued', 'sending', 'deferred', 'discarded', 'sent', 'failed'] as const;
export type MailState = (typeof MAIL_STATES)[number];

export interface AddressSummary {
  name: string;
  address: string;
}
export interface AttachmentSummary {
  name: string;
  size: number;
  type: string;
}
/** What the hold page shows of a mail, read from its headers and MIME structure at intake. */
export interface MailSummary {
  from: AddressSummary[];
  to: AddressSummary[];
  cc: AddressSummary[];
  messageId: string;
  date: string;
  attachments: AttachmentSummary[];
}

export const mails = pgTable(
  'mails',
  {
    id: uuid('id').primaryKey(),
    /** `mail` came in over SMTP; `notice` is an error mail (DSN) that mailhold wrote. */
    kind: text('kind', { enum: ['mail', 'notice'] }).notNull().default('mail'),
    state: text('state', { enum: MAIL_STATES }).notNull(),
    ownerId: integer('owner_id').references(() => users.id, { onDelete: 'set null' }),
    authUser: text('auth_user'),
    clientIp: text('client_ip').notNull(),
    helo: text('helo').notNull().default(''),
    /** The envelope sender; '' is the null sender `<>`. */
    mailFrom: text('mail_from').notNull(),
    smtpUtf8: boolean('smtp_utf8').notNull().default(false),
    body8bit: boolean('body_8bit').notNull().default(false),
    size: bigint('size', { mode: 'number' }).notNull(),
    /** The chunks of the raw message; null once the content has been deleted. */
    contentId: uuid('content_id'),
    headers: bytea('headers').notNull(),
    subject: text('subject').notNull().default(''),
    summary: jsonb('summary').$type<MailSummary>().notNull(),
    /** False for a `<>` sender, an Auto-Submitted mail or a report: no error mail is ever sent for it. */
    bounceAllowed: boolean('bounce_allowed').notNull(),
    receivedAt: tstz('received_at').notNull(),
    dueAt: tstz('due_at').notNull(),
    holdSeconds: integer('hold_seconds').notNull(),
    excludedBy: text('excluded_by', { enum: ['sender', 'recipient', 'source_ip'] }),
    firstAttemptAt: tstz('first_attempt_at'),
    attempts: integer('attempts').notNull().default(0),
    lastReply: text('last_reply'),
    leaseOwner: text('lease_owner'),
    leaseUntil: tstz('lease_until'),
    /** Bumped by every claim; a worker may only finish a delivery whose fence it still holds. */
    fence: integer('fence').notNull().default(0),
    finishedAt: tstz('finished_at'),
    /** Who released or discarded it by hand: page, push, admin, cli. */
    actionBy: text('action_by'),
    actionUserId: integer('action_user_id').references(() => users.id, { onDelete: 'set null' }),
    actionIp: text('action_ip'),
    noticeFor: uuid('notice_for'),
  },
  (t) => [
    check('mails_state_check', sql`${t.state} in ('held', 'queued', 'sending', 'deferred', 'discarded', 'sent', 'failed')`),
    index('mails_waiting_due_idx').on(t.dueAt).where(sql`${t.state} in ('held', 'queued', 'deferred')`),
    index('mails_sending_lease_idx').on(t.leaseUntil).where(sql`${t.state} = 'sending'`),
    index('mails_owner_state_idx').on(t.ownerId, t.state, t.dueAt),
    index('mails_state_due_idx').on(t.state, t.dueAt),
    index('mails_finished_idx').on(t.finishedAt),
  ],
);

export const mailRecipients = pgTable(
  'mail_recipients',
  {
    mailId: uuid('mail_id')
      .notNull()
      .references(() => mails.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    address: text('address').notNull(),
    state: text('state', { enum: ['pending', 'sent', 'failed'] }).notNull().default('pending'),
    reply: text('reply'),
    updatedAt: tstz('updated_at'),
  },
  (t) => [primaryKey({ columns: [t.mailId, t.seq] })],
);

/**
 * Message bytes in order. A content id becomes reachable only when the row that names it
 * (a mail or an outbox entry) commits; chunks nobody names are swept after a grace period.
 */
export const contentChunks = pgTable(
  'content_chunks',
  {
    contentId: uuid('content_id').notNull(),
    seq: integer('seq').notNull(),
    data: bytea('data').notNull(),
    createdAt: tstz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.contentId, t.seq] })],
);

/** The built-in outbox: where mail goes when no UPSTREAM_URL is set. */
export const outbox = pgTable(
  'outbox',
  {
    id: uuid('id').primaryKey(),
    mailId: uuid('mail_id').notNull(),
    mailFrom: text('mail_from').notNull(),
    recipients: jsonb('recipients').$type<string[]>().notNull(),
    subject: text('subject').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    contentId: uuid('content_id').notNull(),
    deliveredAt: tstz('delivered_at').notNull(),
  },
  (t) => [index('outbox_delivered_idx').on(t.deliveredAt)],
);

export const EXCLUSION_KINDS = ['sender', 'recipient', 'source_ip'] as const;
export type ExclusionKind = (typeof EXCLUSION_KINDS)[number];

export const exclusions = pgTable(
  'exclusions',
  {
    id: serial('id').primaryKey(),
    kind: text('kind', { enum: EXCLUSION_KINDS }).notNull(),
    value: text('value').notNull(),
    createdAt: tstz('created_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('exclusions_kind_value_idx').on(t.kind, t.value)],
);

export const settings = pgTable('settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').notNull(),
  updatedAt: tstz('updated_at').notNull().defaultNow(),
});

/** Conditions an administrator must see (our upstream credentials refused, TLS broken). */
export const alerts = pgTable('alerts', {
  kind: text('kind').primaryKey(),
  message: text('message').notNull(),
  count: integer('count').notNull().default(1),
  firstAt: tstz('first_at').notNull(),
  lastAt: tstz('last_at').notNull(),
});

/** Web sessions. The cookie holds a random token; only its SHA-256 is stored. */
export const sessions = pgTable(
  'sessions',
  {
    idHash: text('id_hash').primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: tstz('created_at').notNull(),
    expiresAt: tstz('expires_at').notNull(),
    ip: text('ip').notNull().default(''),
    userAgent: text('user_agent').notNull().default(''),
  },
  (t) => [index('sessions_user_idx').on(t.userId), index('sessions_expires_idx').on(t.expiresAt)],
);

/** One row per device that asked to be notified of held mail. */
export const pushSubscriptions = pgTable(
  'push_subscriptions',
  {
    id: serial('id').primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    endpoint: text('endpoint').notNull().unique(),
    p256dh: text('p256dh').notNull(),
    auth: text('auth').notNull(),
    label: text('label').notNull().default(''),
    createdAt: tstz('created_at').notNull().defaultNow(),
    lastSuccessAt: tstz('last_success_at'),
    failures: integer('failures').notNull().default(0),
  },
  (t) => [index('push_subscriptions_user_idx').on(t.userId)],
);

/** Capability tokens already spent (push actions are single use); kept until they expire. */
export const spentTokens = pgTable('spent_tokens', {
  tokenId: text('token_id').primaryKey(),
  expiresAt: tstz('expires_at').notNull(),
});

/** AUTH_MODE=upstream: the mailer's provider credentials, AES-256-GCM encrypted, while needed. */
export const upstreamCredentials = pgTable('upstream_credentials', {
  userId: integer('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  sealed: bytea('sealed').notNull(),
  updatedAt: tstz('updated_at').notNull(),
});
