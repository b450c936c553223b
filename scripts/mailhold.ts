// The admin CLI: `npm run mailhold -- <command>`. See `npm run mailhold -- help`.
import { ConfigError, describeConfig, loadEnvFile, parseConfig } from '../src/lib/server/config.js';
import { openDatabase } from '../src/lib/server/db/client.js';
import { DataDirLockedError, lockDataDir } from '../src/lib/server/db/lock.js';
import { addUser, findUser, listUsers, removeUser, setAdmin, setPassword, UserError } from '../src/lib/server/users.js';
import { MailApi } from '../src/lib/relay/api.js';

const HELP = `mailhold admin commands (npm run mailhold -- <command>):
  user add <email> --password <pw> [--admin]   create a user (SMTP AUTH and web login)
  user list                                    list the users
  user passwd <email> --password <pw>          set a new password
  user admin <email> [--off]                   make (or unmake) an administrator
  user remove <email>                          delete a user
  config print                                 the effective configuration, secrets redacted
  outbox list                                  mail delivered to the built-in outbox (no UPSTREAM_URL)

With the embedded database (no DATABASE_URL) the CLI needs the data directory to itself:
stop mailhold first, or use the web settings while it runs.`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UserError(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

function bool(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i === -1) return false;
  args.splice(i, 1);
  return true;
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const [group, command] = args.splice(0, 2);
  if (!group || group === 'help' || group === '--help') {
    console.log(HELP);
    return 0;
  }
  loadEnvFile();
  const config = parseConfig(process.env);
  if (group === 'config' && command === 'print') {
    const rows = describeConfig(config);
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
    return 0;
  }
  const unlock = config.databaseUrl ? () => {} : lockDataDir(config.dataDir);
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  try {
    const db = database.db;
    if (group === 'user') {
      if (command === 'add') {
        const admin = bool(args, '--admin');
        const password = flag(args, '--password');
        const email = args[0];
        if (!email || !password) throw new UserError('usage: user add <email> --password <pw> [--admin]');
        const user = await addUser(db, email, password, admin);
        console.log(`added ${user.email}${user.isAdmin ? ' (admin)' : ''}`);
        return 0;
      }
      if (command === 'list') {
        const list = await listUsers(db);
        if (list.length === 0) console.log('no users yet: npm run mailhold -- user add <email> --password <pw> --admin');
        for (const u of list) console.log(`${u.email}${u.isAdmin ? '  admin' : ''}`);
        return 0;
      }
      const email = args.find((a) => !a.startsWith('--'));
      const user = email ? await findUser(db, email) : undefined;
      if (!email) throw new UserError(`usage: user ${command} <email>`);
      if (!user) throw new UserError(`no user ${email}`);
      if (command === 'passwd') {
        const password = flag(args, '--password');
        if (!password) throw new UserError('usage: user passwd <email> --password <pw>');
        await setPassword(db, user.id, password);
        console.log(`password set for ${user.email}`);
        return 0;
      }
      if (command === 'admin') {
        const off = bool(args, '--off');
        await setAdmin(db, user.id, !off);
        console.log(`${user.email} is ${off ? 'no longer' : 'now'} an administrator`);
        return 0;
      }
      if (command === 'remove') {
        await removeUser(db, user.id);
        console.log(`removed ${user.email}`);
        return 0;
      }
    }
    if (group === 'outbox' && command === 'list') {
      const api = new MailApi(db, undefined as never, undefined as never, () => {});
      const entries = await api.outbox(100);
      if (entries.length === 0) console.log('the outbox is empty');
      for (const e of entries) console.log(`${new Date(e.deliveredAt).toISOString()}  ${e.mailFrom || '<>'} -> ${e.recipients.join(', ')}  ${e.subject}  (${e.size} bytes)`);
      return 0;
    }
    console.error(`unknown command: ${[group, command].filter(Boolean).join(' ')}\n\n${HELP}`);
    return 2;
  } finally {
    await database.close();
    unlock();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UserError || err instanceof ConfigError || err instanceof DataDirLockedError) {
      console.error(`mailhold: ${err.message}`);
      process.exit(1);
    }
    console.error(err);
    process.exit(1);
  },
);
