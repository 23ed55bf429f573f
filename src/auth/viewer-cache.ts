// The viewers of credentials checked recently, kept in this process for a few seconds, so that a client
// sending many requests with one API token (or session) costs one database read per few seconds, not
// one per request.
//
// A cached viewer must never outlive its credential. Four things end one early, and each is seen here:
// - this process revokes the token or ends the session: AuthService drops the entry before it answers;
// - another instance does: it announces it on the `account` topic, which every user with cached
//   viewers is subscribed to while they are cached (see #watch);
// - the credential expires: an entry is kept no longer than its credential's expiry;
// - the user changes: AuthService drops every entry of the user (and events of any kind other than a
//   credential starting do the same, so that a new account event kind errs on the safe side).
// A read that was under way while any of that happened is not stored (see `mark` and `store`).
//
// Left open: an event that Redis loses (it is down) leaves another instance's entry until it lapses,
// at most `ttlMs` later; and a subscription is assumed to be listening once it was asked for, which
// holds unless the Redis connection lags behind the database by more than a request.
import type { EventBus } from '../events/pubsub.ts';
import type { AccountEvent } from '../events/topics.ts';
import type { Credential, Viewer } from './viewer.ts';
import { hashSecret } from './secrets.ts';

export const VIEWER_CACHE_TTL_MS = 5_000;
/** A user's subscription is kept this long after their last cached entry, so that a steady client does not resubscribe every few seconds. */
const WATCH_LINGER_MS = 60_000;
/** Beyond this many entries nothing more is cached (the entries lapse within `ttlMs` anyway). */
const MAX_ENTRIES = 10_000;

interface Entry {
  viewer: Viewer;
  /** Date.now() past which the entry is not used: `ttlMs` after the read, or the credential's expiry if sooner. */
  validUntil: number;
}

/** A user's subscription to the `account` topic, and the entries it guards. */
interface Watch {
  /** `#clock` when the subscription was made: only reads that began later may be stored. */
  since: number;
  /** `#clock` of the last change that dropped entries of this user: reads that began earlier are not stored. */
  lastChange: number;
  keys: Set<string>;
  lastUsed: number;
  events: AsyncIterator<AccountEvent>;
}

export class ViewerCache {
  readonly #bus: EventBus;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #watches = new Map<number, Watch>();
  /** Orders reads and changes: a read takes a mark when it begins, a change ticks when it happens. */
  #clock = 0;
  readonly #sweeper: NodeJS.Timeout;

  constructor(bus: EventBus, ttlMs = VIEWER_CACHE_TTL_MS) {
    this.#bus = bus;
    this.#ttlMs = ttlMs;
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(ttlMs, 1000));
    this.#sweeper.unref();
  }

  /** The entry key of a credential: a SHA-256 of the token, so that no token is held in the clear. */
  key(credential: Credential): string {
    return `${credential.kind}:${hashSecret(credential.token)}`;
  }

  /** The cached viewer, or null when there is none or it has lapsed. */
  get(key: string): Viewer | null {
    const entry = this.#entries.get(key);
    if (!entry) return null;
    if (Date.now() >= entry.validUntil) {
      this.#drop(key, entry);
      return null;
    }
    return entry.viewer;
  }

  /** Taken before the database read whose viewer may be stored. */
  mark(): number {
    return ++this.#clock;
  }

  /**
   * Keeps a viewer read from the database, unless something may have ended it since the read began
   * (`mark`). A user seen for the first time is subscribed to now, and cached from their next request.
   */
  store(key: string, viewer: Viewer, mark: number): void {
    const userId = viewer.user.id;
    const watch = this.#watches.get(userId) ?? this.#watch(userId);
    watch.lastUsed = Date.now();
    if (watch.since > mark || watch.lastChange > mark || this.#entries.size >= MAX_ENTRIES) return;
    const expiresAt = viewer.credential.expiresAt?.getTime() ?? Infinity;
    this.#entries.set(key, { viewer, validUntil: Math.min(Date.now() + this.#ttlMs, expiresAt) });
    watch.keys.add(key);
  }

  /** Drops the viewers of one session or API token of the user (it ended). */
  forgetCredential(userId: number, credentialId: string): void {
    this.#forget(userId, (viewer) => viewer.credential.id === credentialId);
  }

  /** Drops every viewer of the user (the account changed). */
  forgetUser(userId: number): void {
    this.#forget(userId, () => true);
  }

  /** Stops the subscriptions (on shutdown). */
  close(): void {
    clearInterval(this.#sweeper);
    for (const [userId, watch] of this.#watches) this.#unwatch(userId, watch);
    this.#entries.clear();
  }

  #forget(userId: number, matches: (viewer: Viewer) => boolean): void {
    const watch = this.#watches.get(userId);
    // Without a watch nothing of the user is cached, and a read under way will not be stored (it makes the watch).
    if (!watch) return;
    watch.lastChange = ++this.#clock;
    for (const key of watch.keys) {
      const entry = this.#entries.get(key);
      if (!entry || matches(entry.viewer)) this.#drop(key, entry);
    }
  }

  #drop(key: string, entry: Entry | undefined): void {
    this.#entries.delete(key);
    if (entry) this.#watches.get(entry.viewer.user.id)?.keys.delete(key);
  }

  /** Subscribes to the user's account events from every instance. */
  #watch(userId: number): Watch {
    const events = this.#bus.subscribe('account', String(userId))[Symbol.asyncIterator]();
    const watch: Watch = { since: ++this.#clock, lastChange: 0, keys: new Set(), lastUsed: Date.now(), events };
    this.#watches.set(userId, watch);
    void (async () => {
      // The first next() subscribes (synchronously), before any read that may be stored can begin.
      for (let step = await events.next(); !step.done; step = await events.next()) {
        const { kind, subjectId } = step.value;
        if (kind === 'SESSION_STARTED' || kind === 'API_TOKEN_CREATED') continue;
        if (kind === 'SESSION_ENDED' || kind === 'API_TOKEN_REVOKED') this.forgetCredential(userId, subjectId);
        else this.forgetUser(userId);
      }
    })()
      .catch((error: unknown) => console.error(`auth: the account events of user ${userId} failed; their cached credentials are dropped`, error))
      // Without its subscription a user's entries could go stale: they go with it.
      .finally(() => {
        if (this.#watches.get(userId) === watch) this.#unwatch(userId, watch);
      });
    return watch;
  }

  #unwatch(userId: number, watch: Watch): void {
    this.#watches.delete(userId);
    for (const key of watch.keys) this.#entries.delete(key);
    watch.keys.clear();
    void watch.events.return?.();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.#entries) if (now >= entry.validUntil) this.#drop(key, entry);
    for (const [userId, watch] of this.#watches) {
      if (watch.keys.size === 0 && now - watch.lastUsed > WATCH_LINGER_MS) this.#unwatch(userId, watch);
    }
  }
}
