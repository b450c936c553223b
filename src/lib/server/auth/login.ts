import type { Logger } from 'pino';
import type { DbOrTx } from '../db/client.js';
import { users } from '../db/schema.js';
import { authenticate as authenticateLocal, findUser, normalizeEmail, UserError, type User } from '../users.js';
import type { UpstreamLogin } from './credentials.js';
import { checkUpstreamLogin, type UpstreamCheck } from './upstream-login.js';

/**
 * The one login check behind SMTP AUTH and the web login form, so that both take the same
 * address and password (DESIGN: People).
 *
 * AUTH_MODE=local: the users table (scrypt hashes), as before.
 * AUTH_MODE=upstream (the seed's pass-through): the login is checked live against UPSTREAM_URL;
 * the account is created at its first successful login. The web form also takes a local password
 * where an account has one (the ADMIN_EMAIL admin, users added with the CLI), so that the
 * settings stay reachable while the provider is down. SMTP AUTH asks the upstream only: the
 * login it accepts is the one the user's mail is delivered with.
 *
 * A wrong login gives `undefined` (count it as a failed login); an upstream that could not be
 * asked throws LoginUnavailableError (do NOT count it; SMTP answers 454 4.7.0, the web "try
 * again in a moment").
 */
export class LoginUnavailableError extends Error {
  readonly responseCode = 454;
  constructor(message = 'Cannot check the login with the mail server right now, try again later') {
    super(message);
    this.name = 'LoginUnavailableError';
  }
}

export interface LoginResult {
  user: User;
  /** AUTH_MODE=upstream: the provider login that was accepted, for delivering this user's mail. */
  upstream?: UpstreamLogin;
}

export type LoginPurpose = 'smtp' | 'web';

export interface Authenticator {
  readonly mode: 'local' | 'upstream';
  check(login: string, password: string, purpose: LoginPurpose): Promise<LoginResult | undefined>;
}

export interface AuthenticatorOptions {
  mode: 'local' | 'upstream';
  db: DbOrTx;
  log: Logger;
  upstream?: URL;
  /** Replaceable in tests; the real one talks SMTP to the upstream. */
  checkUpstream?: (login: string, password: string) => Promise<UpstreamCheck>;
}

export function createAuthenticator(o: AuthenticatorOptions): Authenticator {
  if (o.mode === 'local') {
    return {
      mode: 'local',
      async check(login, password) {
        const user = await authenticateLocal(o.db, login, password);
        return user ? { user } : undefined;
      },
    };
  }
  const url = o.upstream;
  if (!url) throw new Error('[auth] AUTH_MODE: upstream needs UPSTREAM_URL to check the logins against');
  const ask = o.checkUpstream ?? ((login: string, password: string) => checkUpstreamLogin(url, login, password));
  return {
    mode: 'upstream',
    async check(login, password, purpose) {
      let email: string;
      try {
        email = normalizeEmail(login);
      } catch (err) {
        if (err instanceof UserError) return undefined;
        throw err;
      }
      if (purpose === 'web') {
        const local = await authenticateLocal(o.db, email, password);
        if (local) return { user: local };
      }
      const answer = await ask(login, password);
      if (answer.verdict === 'unavailable') {
        o.log.warn({ user: email, detail: answer.detail }, 'upstream login check unavailable');
        throw new LoginUnavailableError();
      }
      if (answer.verdict === 'refused') {
        o.log.info({ user: email, detail: answer.detail }, 'upstream refused the login');
        return undefined;
      }
      const user = await ensureAccount(o.db, email);
      return { user, upstream: { user: login, pass: password } };
    },
  };
}

/** The account of a pass-through user, created at the first successful login (no local password). */
async function ensureAccount(db: DbOrTx, email: string): Promise<User> {
  await db.insert(users).values({ email, passwordHash: null, isAdmin: false }).onConflictDoNothing();
  const user = await findUser(db, email);
  if (!user) throw new Error(`the account ${email} could not be created`);
  return user;
}

/**
 * For the web login form: the same check as SMTP AUTH. Returns the user, `undefined` for a wrong
 * login, and throws LoginUnavailableError when the upstream could not be asked.
 */
export async function webLogin(app: { relay: { auth: Authenticator } }, email: string, password: string): Promise<User | undefined> {
  return (await app.relay.auth.check(email, password, 'web'))?.user;
}
