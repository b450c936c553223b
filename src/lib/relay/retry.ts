/**
 * When to try a deferred mail again, counted from the previous attempt. The last step repeats.
 * The window (RETRY_WINDOW_SECONDS, 600 by default as in the original appliance) is counted from
 * the first attempt; the last retry is made when the window ends, and a mail still deferred then
 * fails.
 *
 *   retry  after   total since the first attempt
 *     1     15 s      15 s
 *     2     30 s      45 s
 *     3     60 s     105 s
 *     4    120 s     225 s
 *     5    240 s     465 s
 *     6    480 s     600 s (cut to the window's end with the default window)
 *     7    900 s    ...and every 15 minutes after that for longer windows
 */
export const RETRY_DELAYS_SECONDS = [15, 30, 60, 120, 240, 480, 900] as const;

/**
 * The due time of the next attempt, or undefined when the window is over.
 * `attempts` counts the attempts made so far (at least 1).
 */
export function nextAttemptAt(attempts: number, firstAttemptAt: number, now: number, windowSeconds: number): number | undefined {
  const windowEnd = firstAttemptAt + windowSeconds * 1000;
  if (now >= windowEnd) return undefined;
  const step = RETRY_DELAYS_SECONDS[Math.min(Math.max(attempts, 1), RETRY_DELAYS_SECONDS.length) - 1]! * 1000;
  return Math.min(now + step, windowEnd);
}
