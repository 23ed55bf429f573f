// The login rate limit's parts that need no server: which address a request counts under, the
// in-process buckets, and the limiter's rules (failures count per login, everything per address).
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { addressBucket, LoginLimiter, MemoryBuckets } from '../../src/auth/login-limiter.ts';
import { DomainError, TooManyRequestsError } from '../../src/domain/errors.ts';
import { clientAddress, normaliseAddress } from '../../src/http/client-address.ts';

function request(remoteAddress: string | undefined, forwardedFor?: string): IncomingMessage {
  return { socket: { remoteAddress }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } } as unknown as IncomingMessage;
}

describe('client address', () => {
  it('is the socket peer unless TRUST_PROXY, then the last hop of X-Forwarded-For', () => {
    expect(clientAddress(request('10.0.0.5', '1.1.1.1, 192.0.2.7'), false)).toBe('10.0.0.5');
    expect(clientAddress(request('10.0.0.5', '1.1.1.1, 192.0.2.7'), true)).toBe('192.0.2.7');
    expect(clientAddress(request('10.0.0.5', '192.0.2.7:41234'), true)).toBe('192.0.2.7');
    expect(clientAddress(request('10.0.0.5', '[2001:DB8::1]:443'), true)).toBe('2001:db8::1');
    // A last hop that is not an address (a broken proxy): the socket peer.
    expect(clientAddress(request('10.0.0.5', '192.0.2.7, unknown'), true)).toBe('10.0.0.5');
    expect(clientAddress(request('10.0.0.5'), true)).toBe('10.0.0.5');
    expect(clientAddress(request('::ffff:127.0.0.1'), false)).toBe('127.0.0.1');
    expect(clientAddress(request(undefined), false)).toBeNull();
  });

  it('reads one spelling of an address', () => {
    expect(normaliseAddress(' fe80::1%eth0 ')).toBe('fe80::1');
    expect(normaliseAddress('not-an-ip')).toBeNull();
    expect(normaliseAddress('')).toBeNull();
  });

  it('counts IPv4 addresses one by one and IPv6 ones by /64', () => {
    expect(addressBucket('192.0.2.7')).toBe('192.0.2.7');
    expect(addressBucket('2001:db8:0:1::5')).toBe('2001:db8:0:1::/64');
    expect(addressBucket('2001:0db8:0000:0001:ffff:0:0:9')).toBe('2001:db8:0:1::/64');
    expect(addressBucket('::1')).toBe('0:0:0:0::/64');
    expect(addressBucket('64:ff9b::192.0.2.7')).toBe('64:ff9b:0:0::/64');
  });
});

describe('in-process buckets', () => {
  afterEach(() => vi.useRealTimers());

  it('counts in every bucket or in none, and empties a bucket when its window ends', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const buckets = new MemoryBuckets();
    expect(await buckets.take(['a', 'b'], 2, 10_000)).toBe(0);
    vi.advanceTimersByTime(4000);
    expect(await buckets.take(['a'], 2, 10_000)).toBe(0);
    // 'a' is full: nothing is counted, not even in 'c', and the wait is what is left of a's window.
    expect(await buckets.take(['a', 'c'], 2, 10_000)).toBe(6000);
    expect(await buckets.take(['c'], 1, 10_000)).toBe(0);
    await buckets.refund('a');
    expect(await buckets.take(['a'], 2, 10_000)).toBe(0);
    vi.advanceTimersByTime(6000);
    expect(await buckets.take(['a', 'b'], 2, 10_000)).toBe(0);
  });

  it('forgets the oldest windows past its size', async () => {
    const buckets = new MemoryBuckets(2);
    for (const key of ['a', 'b', 'c']) await buckets.take([key], 1, 60_000);
    expect(await buckets.take(['a'], 1, 60_000)).toBe(0);
    expect(await buckets.take(['c'], 1, 60_000)).toBeGreaterThan(0);
  });
});

describe('LoginLimiter in process', () => {
  const wrong = async (): Promise<never> => {
    throw new DomainError('INVALID_CREDENTIALS');
  };
  const refusal = async (work: Promise<unknown>) => {
    const error = await work.then(() => null, (e: unknown) => e);
    return error instanceof TooManyRequestsError ? 'TOO_MANY_REQUESTS' : error instanceof DomainError ? error.code : error;
  };

  it('counts failures per login (whatever its case) and every attempt per address', async () => {
    const limiter = LoginLimiter.inProcess({ attempts: 2, windowSeconds: 60 });
    expect(await refusal(limiter.limit('Alice', '192.0.2.1', wrong))).toBe('INVALID_CREDENTIALS');
    expect(await refusal(limiter.limit(' alice ', '192.0.2.2', wrong))).toBe('INVALID_CREDENTIALS');
    // The login's bucket is full, from any address, and the password is not checked.
    const verify = vi.fn(async () => 'user');
    expect(await refusal(limiter.limit('alice', '192.0.2.3', verify))).toBe('TOO_MANY_REQUESTS');
    expect(verify).not.toHaveBeenCalled();

    // Successes do not fill a login's bucket, but count for the address.
    expect(await limiter.limit('bob', '192.0.2.4', async () => 'ok')).toBe('ok');
    expect(await limiter.limit('bob', '192.0.2.4', async () => 'ok')).toBe('ok');
    expect(await refusal(limiter.limit('bob', '192.0.2.4', async () => 'ok'))).toBe('TOO_MANY_REQUESTS');
    expect(await limiter.limit('bob', '192.0.2.5', async () => 'ok')).toBe('ok');
    // Other outcomes (an unconfirmed account, an error) do not count against the login either.
    const unconfirmed = async (): Promise<never> => {
      throw new DomainError('ACCOUNT_NOT_CONFIRMED');
    };
    for (const address of ['192.0.2.6', '192.0.2.7', '192.0.2.8']) {
      expect(await refusal(limiter.limit('dave', address, unconfirmed))).toBe('ACCOUNT_NOT_CONFIRMED');
    }
  });

  it('tells how long to wait, and does nothing when the limit is 0', async () => {
    const limiter = LoginLimiter.inProcess({ attempts: 1, windowSeconds: 30 });
    await limiter.limit('carol', null, wrong).catch(() => {});
    const error = (await limiter.limit('carol', null, wrong).catch((e: unknown) => e)) as TooManyRequestsError;
    expect(error).toBeInstanceOf(TooManyRequestsError);
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(29);
    expect(error.retryAfterSeconds).toBeLessThanOrEqual(30);
    expect(error.extensions).toEqual({
      code: 'TOO_MANY_REQUESTS',
      retryAfterSeconds: error.retryAfterSeconds,
      http: { status: 429, headers: { 'Retry-After': String(error.retryAfterSeconds) } },
    });

    const off = LoginLimiter.inProcess({ attempts: 0, windowSeconds: 30 });
    for (let i = 0; i < 20; i++) expect(await refusal(off.limit('carol', '192.0.2.9', wrong))).toBe('INVALID_CREDENTIALS');
  });
});
