import { router } from './init.js';
import { exclusions } from './exclusions.js';
import { mail } from './mail.js';
import { settings } from './settings.js';
import { users } from './users.js';

export const appRouter = router({ mail, settings, exclusions, users });

export type AppRouter = typeof appRouter;
