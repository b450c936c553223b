import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One logger for the process; each component takes a child (`log.child({ c: 'intake' })`).
 * Transition lines start with a stable verb (HELD, DISCARDED, SENT, ...) and carry the mail id.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Not one write(2) per line: lines logged while a write is in flight go out together in the
    // next one, which matters at a thousand mails a second. A quiet relay still writes each line
    // at once, and pino flushes what is left when the process exits.
    pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that writes nothing, for tests and tools that only want the return values. */
export const silentLogger: Logger = pino({ level: 'silent' });
