import { router } from './init.js';
import { exclusions } from './exclusions.js';
import { mail } from './mail.js';
import { push } from './push.js';
import { settings } from './settings.js';
import { users } from './users.js';

export const appRouter = router({ mail, settings, exclusions, users, push });

export type AppRouter = typeof appRouter;
