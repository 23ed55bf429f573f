import { ServiceUnavailableError } from '../domain/errors.ts';
import { OutageLog } from '../util/outage-log.ts';

// Whether an error means the database could not be reached (an outage), as opposed to a bad query or
// a constraint: an outage is retried by writers that must not lose what they hold, and answered as 503
// SERVICE_UNAVAILABLE to clients, never as an unexpected error.

/** Socket-level failures (node, pg) and PostgreSQL's own "not now" codes (class 08, 57P01–57P03). */
const CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03']);
const MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly|server closed the connection unexpectedly|the database system is (starting up|shutting down|in recovery mode)/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const { code, message, name } = current as { code?: unknown; message?: unknown; name?: unknown };
    if (typeof code === 'string' && (CODES.has(code) || code.startsWith('08'))) return true;
    if (name === 'ConnectionException') return true;
    if (typeof message === 'string' && MESSAGES.test(message)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** The pause before retry n of a write waiting out a database outage: 200 ms, doubling, at most 5 s. */
export const outageRetryDelay = (attempt: number): number => Math.min(5000, 100 * 2 ** Math.min(attempt, 6));

/**
 * Runs `write` until it succeeds, waiting out database outages (with backoff) for as long as they last,
 * unless `giveUp()` (the service is stopping). Any other error is thrown at once.
 */
export async function whileDatabaseUnavailable<T>(write: () => Promise<T>, giveUp: () => boolean = () => false): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (!isDatabaseUnavailable(error) || giveUp()) throw error;
      await new Promise((resolve) => setTimeout(resolve, outageRetryDelay(attempt)));
    }
  }
}

/** The database's state as requests see it: one log line when it stops answering, one when it is back. */
export const databaseOutage = new OutageLog('database');

/** The client's answer for an error that is a database outage (noted in the outage log), or null for any other error. */
export function asServiceUnavailable(error: unknown): ServiceUnavailableError | null {
  if (error instanceof ServiceUnavailableError) return error;
  if (!isDatabaseUnavailable(error)) return null;
  databaseOutage.failed(error);
  return new ServiceUnavailableError();
}
