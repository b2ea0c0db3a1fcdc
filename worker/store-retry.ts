import { setTimeout as sleep } from 'node:timers/promises';
import { isAppError } from '../shared/domain/errors.js';
import { logger } from '../shared/runtime/logger.js';

/**
 * Retries a store call for as long as the database is unavailable, holding the
 * message unacked meanwhile: an outcome we cannot record must not be acked, and
 * a send already made must not be repeated just because recording it failed.
 * Gives up (throws) only when the worker is stopping.
 */
export async function untilStored<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!isAppError(error, 'database_unavailable') || signal.aborted) throw error;
      if (attempt % 10 === 0) logger.warn('database unavailable, holding the message until it is back', { attempt });
      await sleep(Math.min(5000, 100 * 2 ** Math.min(attempt, 6)), undefined, { signal }).catch(() => undefined);
    }
  }
}
