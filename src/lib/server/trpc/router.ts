import { push } from './push.js';
import { router } from './init.js';

export const appRouter = router({ push });

export type AppRouter = typeof appRouter;
