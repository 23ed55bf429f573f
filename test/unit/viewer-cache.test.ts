// The per-process cache of authenticated viewers (src/auth/viewer-cache.ts): what it keeps, and every
// way a kept viewer is dropped before it lapses. The bus is the in-process one, standing in for Redis.
import { afterEach, describe, expect, it } from 'vitest';
import { ViewerCache } from '../../src/auth/viewer-cache.ts';
import type { Viewer } from '../../src/auth/auth.service.ts';
import type { User } from '../../src/domain/users/user.entity.ts';
import { inProcessEvents } from '../../src/events/pubsub.ts';
import type { AccountEventKind } from '../../src/events/topics.ts';

const caches: ViewerCache[] = [];
afterEach(() => caches.splice(0).forEach((cache) => cache.close()));

function setUp(ttlMs = 5000) {
  const { bus } = inProcessEvents();
  const cache = new ViewerCache(bus, ttlMs);
  caches.push(cache);
  /** What another instance announces on the bus. */
  const announce = async (kind: AccountEventKind, userId: number, subjectId: string) => {
    bus.publish('account', String(userId), { kind, userId: String(userId), subjectId, at: new Date().toISOString() });
    await new Promise((resolve) => setImmediate(resolve)); // the cache's listener runs
  };
  return { cache, announce };
}

function viewer(userId: number, credentialId: string, kind: 'session' | 'apiToken' = 'apiToken', expiresAt: Date | null = null): Viewer {
  return { user: { id: userId } as User, credential: { kind, id: credentialId, expiresAt } };
}

/** Stores a viewer the way AuthService does, twice: a user's first read subscribes, the next is kept. */
function remember(cache: ViewerCache, token: string, v: Viewer): string {
  const key = cache.key({ kind: v.credential.kind, token });
  cache.store(key, v, cache.mark());
  cache.store(key, v, cache.mark());
  return key;
}

describe('ViewerCache', () => {
  it('keys by a hash of the token, and keeps a viewer from the second read of its user on', () => {
    const { cache } = setUp();
    const key = cache.key({ kind: 'apiToken', token: 'dyt_abc.secret' });
    expect(key).not.toContain('secret');
    expect(cache.key({ kind: 'session', token: 'dyt_abc.secret' })).not.toBe(key);
    const v = viewer(1, 'abc');
    cache.store(key, v, cache.mark());
    expect(cache.get(key)).toBeNull(); // the first read only subscribed to the user's events
    cache.store(key, v, cache.mark());
    expect(cache.get(key)).toBe(v);
  });

  it('drops a token revoked on another instance at once, and only that one', async () => {
    const { cache, announce } = setUp();
    const revoked = remember(cache, 'dyt_a.s', viewer(1, 'a'));
    const other = remember(cache, 'dyt_b.s', viewer(1, 'b'));
    await announce('API_TOKEN_CREATED', 1, 'c');
    expect(cache.get(revoked)).not.toBeNull();
    await announce('API_TOKEN_REVOKED', 1, 'a');
    expect(cache.get(revoked)).toBeNull();
    expect(cache.get(other)).not.toBeNull();
  });

  it('drops a session ended on another instance', async () => {
    const { cache, announce } = setUp();
    const key = remember(cache, 'sid.s', viewer(2, 'sid', 'session'));
    await announce('SESSION_ENDED', 2, 'sid');
    expect(cache.get(key)).toBeNull();
  });

  it('drops every viewer of a user on an account event of a kind it does not know', async () => {
    const { cache, announce } = setUp();
    const key = remember(cache, 'dyt_a.s', viewer(3, 'a'));
    await announce('USER_CHANGED' as AccountEventKind, 3, '3');
    expect(cache.get(key)).toBeNull();
  });

  it('drops what this process ends, without waiting for the event', () => {
    const { cache } = setUp();
    const token = remember(cache, 'dyt_a.s', viewer(4, 'a'));
    const session = remember(cache, 'sid.s', viewer(4, 'sid', 'session'));
    cache.forgetCredential(4, 'a');
    expect(cache.get(token)).toBeNull();
    expect(cache.get(session)).not.toBeNull();
    cache.forgetUser(4);
    expect(cache.get(session)).toBeNull();
  });

  it('does not keep a read that was under way when its credential ended', () => {
    const { cache } = setUp();
    const v = viewer(5, 'a');
    const key = cache.key({ kind: 'apiToken', token: 'dyt_a.s' });
    cache.store(key, v, cache.mark()); // the user is watched from here on
    const before = cache.mark(); // a read that began before the revocation…
    cache.forgetCredential(5, 'a');
    cache.store(key, v, before); // …and saw the token still valid
    expect(cache.get(key)).toBeNull();
    cache.store(key, v, cache.mark()); // a read after it is kept (here it saw a valid token again)
    expect(cache.get(key)).toBe(v);
  });

  it('keeps a viewer no longer than its time to live, nor past its credential expiry', async () => {
    const { cache } = setUp(50);
    const key = remember(cache, 'dyt_a.s', viewer(6, 'a'));
    const expiring = remember(cache, 'dyt_b.s', viewer(6, 'b', 'apiToken', new Date(Date.now() + 20)));
    expect(cache.get(key)).not.toBeNull();
    expect(cache.get(expiring)).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 25));
    expect(cache.get(expiring)).toBeNull();
    expect(cache.get(key)).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(cache.get(key)).toBeNull();
  });
});
