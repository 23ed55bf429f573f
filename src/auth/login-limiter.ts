// Login rate limiting (LOGIN_RATE_LIMIT per LOGIN_RATE_WINDOW_SECONDS), in two kinds of bucket:
//   - per client address, counting every attempt: one address cannot try many logins (or one login
//     many times) quickly. IPv6 addresses count by their /64, which one client usually has whole.
//   - per login, counting failed attempts (unknown login or wrong password): many addresses together
//     cannot guess one login's password quickly. A login that succeeds (or is refused for another
//     reason, such as an unconfirmed account) gives its place back, so it never uses up the bucket:
//     the owner is blocked only while others' failures fill it.
// An attempt takes its place in both buckets before the password is checked (so concurrent attempts
// cannot pass a full bucket together), and is refused when either is full, with the time until that
// bucket's window ends. Refused attempts are not counted. Known and unknown logins are treated alike.
//
// Windows are fixed: a bucket's window starts at its first attempt and the bucket is emptied when it
// ends (so across the end of a window up to twice the limit can pass). With Redis the buckets are
// shared by all instances (one Lua script takes places in both atomically); without it, or while Redis
// does not answer, each process counts on its own rather than refusing logins.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { Redis } from 'ioredis';
import { redact } from '../config.ts';
import { DomainError, TooManyRequestsError } from '../domain/errors.ts';
import { loginKey } from '../domain/users/users.service.ts';

export interface LoginLimitSettings {
  /** Attempts per bucket and window; 0 turns limiting off. */
  attempts: number;
  windowSeconds: number;
}

/** Counters that expire a window after their first count. */
export interface Buckets {
  /**
   * Counts one in each bucket, unless one of them is already at `limit`: then counts none and returns
   * the milliseconds until the fullest of those windows ends (0 when counted).
   */
  take(keys: string[], limit: number, windowMs: number): Promise<number>;
  /** Takes one count back, if the bucket still has one. */
  refund(key: string): Promise<void>;
}

const KEY_PREFIX = 'dockyard:login-limit:';

export class LoginLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #memory: Buckets;
  readonly #redis: { buckets: Buckets; client: Redis } | null;
  #lastReport = 0;

  private constructor(settings: LoginLimitSettings, redis: { buckets: Buckets; client: Redis } | null, memory: Buckets = new MemoryBuckets()) {
    this.#limit = settings.attempts;
    this.#windowMs = settings.windowSeconds * 1000;
    this.#redis = redis;
    this.#memory = memory;
  }

  /** Counts in this process (no REDIS_URL). */
  static inProcess(settings: LoginLimitSettings): LoginLimiter {
    return new LoginLimiter(settings, null);
  }

  /** Counts in Redis, shared by every instance; in this process while Redis does not answer. */
  static async withRedis(url: string, settings: LoginLimitSettings): Promise<LoginLimiter> {
    if (settings.attempts === 0) return LoginLimiter.inProcess(settings);
    // No offline queue and a short command timeout: while Redis is away, an attempt falls back at once
    // instead of waiting for a reconnection.
    const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 3000, commandTimeout: 1000 });
    const limiter = new LoginLimiter(settings, { buckets: new RedisBuckets(client), client });
    // ioredis reconnects on its own; without a listener an error event would end the process.
    client.on('error', (error: Error) => limiter.#report(error));
    await client.connect().catch((error: unknown) => limiter.#report(error as Error, url));
    return limiter;
  }

  /**
   * Runs `verify` (the password check) unless a bucket of this login or address is full, in which case
   * it throws TOO_MANY_REQUESTS without running it. `verify` failing with INVALID_CREDENTIALS keeps the
   * attempt counted against the login; any other outcome gives that place back.
   */
  async limit<T>(login: string, address: string | null, verify: () => Promise<T>): Promise<T> {
    if (this.#limit === 0) return verify();
    const loginBucket = `${KEY_PREFIX}login:${createHash('sha256').update(loginKey(login)).digest('base64url')}`;
    const keys = address === null ? [loginBucket] : [`${KEY_PREFIX}addr:${addressBucket(address)}`, loginBucket];
    const { buckets, waitMs } = await this.#take(keys);
    if (waitMs > 0) throw new TooManyRequestsError(waitMs / 1000);
    let failed = false;
    try {
      return await verify();
    } catch (error) {
      failed = error instanceof DomainError && error.code === 'INVALID_CREDENTIALS';
      throw error;
    } finally {
      if (!failed) await buckets.refund(loginBucket).catch((error: unknown) => this.#report(error as Error));
    }
  }

  async close(): Promise<void> {
    if (this.#redis && this.#redis.client.status !== 'end') await this.#redis.client.quit().catch(() => this.#redis?.client.disconnect());
  }

  async #take(keys: string[]): Promise<{ buckets: Buckets; waitMs: number }> {
    if (this.#redis) {
      try {
        return { buckets: this.#redis.buckets, waitMs: await this.#redis.buckets.take(keys, this.#limit, this.#windowMs) };
      } catch (error) {
        this.#report(error as Error);
      }
    }
    return { buckets: this.#memory, waitMs: await this.#memory.take(keys, this.#limit, this.#windowMs) };
  }

  #report(error: Error, url?: string): void {
    if (Date.now() - this.#lastReport < 10_000) return;
    this.#lastReport = Date.now();
    const where = url ? ` at ${redact(url)}` : '';
    console.error(`login limit: Redis${where} is unavailable, attempts are counted in this process: ${error.message}`);
  }
}

/** IPv4 addresses count one by one; IPv6 ones by their /64. */
export function addressBucket(address: string): string {
  if (isIP(address) !== 6) return address;
  return `${ipv6Groups(address).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros. */
function ipv6Groups(address: string): string[] {
  let text = address.replace(/%.*$/, '').toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const split = (part: string) => (part === '' ? [] : part.split(':'));
  const groups = tail === undefined ? split(head) : [...split(head), ...Array<string>(8 - split(head).length - split(tail).length).fill('0'), ...split(tail)];
  return groups.map((group) => parseInt(group, 16).toString(16));
}

/** Buckets in this process. Map order is window order (a bucket is re-inserted when its window restarts), so expired buckets are dropped from the front. */
export class MemoryBuckets implements Buckets {
  readonly #buckets = new Map<string, { count: number; resetAt: number }>();
  readonly #maxBuckets: number;

  /** Past `maxBuckets` (a flood of addresses and logins), the oldest windows are forgotten early. */
  constructor(maxBuckets = 100_000) {
    this.#maxBuckets = maxBuckets;
  }

  async take(keys: string[], limit: number, windowMs: number): Promise<number> {
    const now = Date.now();
    for (const [key, bucket] of this.#buckets) {
      if (bucket.resetAt > now) break;
      this.#buckets.delete(key);
    }
    let waitMs = 0;
    for (const key of keys) {
      const bucket = this.#buckets.get(key);
      if (bucket && bucket.count >= limit) waitMs = Math.max(waitMs, bucket.resetAt - now);
    }
    if (waitMs > 0) return waitMs;
    for (const key of keys) {
      const bucket = this.#buckets.get(key);
      if (bucket) bucket.count += 1;
      else this.#buckets.set(key, { count: 1, resetAt: now + windowMs });
    }
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= this.#maxBuckets) break;
      this.#buckets.delete(key);
    }
    return 0;
  }

  async refund(key: string): Promise<void> {
    const bucket = this.#buckets.get(key);
    if (bucket && bucket.count > 0 && bucket.resetAt > Date.now()) bucket.count -= 1;
  }
}

// KEYS: the buckets; ARGV: limit, window (ms). Returns 0 when counted in all, else the longest PTTL of
// the full ones (a full bucket that somehow lost its expiry gets one, so it cannot block for ever).
const TAKE_SCRIPT = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= limit then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, window)
      ttl = window
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, window) end
end
return 0
`;

// DECR keeps the expiry; a bucket whose window has ended (gone, or restarted at 0) is left alone.
const REFUND_SCRIPT = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
`;

interface LimitCommands {
  dockyardLoginTake(numKeys: number, ...args: (string | number)[]): Promise<number>;
  dockyardLoginRefund(key: string): Promise<number>;
}

class RedisBuckets implements Buckets {
  readonly #client: Redis & LimitCommands;

  constructor(client: Redis) {
    // Sent as EVALSHA, with EVAL when Redis does not have the script yet.
    client.defineCommand('dockyardLoginTake', { lua: TAKE_SCRIPT });
    client.defineCommand('dockyardLoginRefund', { numberOfKeys: 1, lua: REFUND_SCRIPT });
    this.#client = client as Redis & LimitCommands;
  }

  async take(keys: string[], limit: number, windowMs: number): Promise<number> {
    return Number(await this.#client.dockyardLoginTake(keys.length, ...keys, limit, windowMs));
  }

  async refund(key: string): Promise<void> {
    await this.#client.dockyardLoginRefund(key);
  }
}
