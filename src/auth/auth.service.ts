// Sessions and API tokens: issuing, checking and ending the credentials a request presents.
import type { Orm } from '../db/orm.ts';
import type { EventBus } from '../events/pubsub.ts';
import type { AccountEventKind } from '../events/topics.ts';
import { DomainError } from '../domain/errors.ts';
import type { UsersService } from '../domain/users/users.service.ts';
import type { User } from '../domain/users/user.entity.ts';
import { issueToken, parseToken, secretMatches } from './secrets.ts';
import { Session } from './session.entity.ts';
import { ApiToken } from './api-token.entity.ts';
import { ViewerCache, VIEWER_CACHE_TTL_MS } from './viewer-cache.ts';
import type { Credential, Viewer } from './viewer.ts';
import { LoginLimiter } from './login-limiter.ts';

/** API tokens carry a prefix so that they are told apart from session tokens (and found by secret scanners). */
export const API_TOKEN_PREFIX = 'dyt_';
const API_TOKEN_MAX_DAYS = 3650;
/** `lastUsedAt` is written at most this often per token, not on every request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** What a request presented: a session cookie or a bearer API token. */
export type { Credential, Viewer } from './viewer.ts';

export class AuthService {
  readonly #orm: Orm;
  readonly #users: UsersService;
  readonly #bus: EventBus;
  readonly #sessionTtlMs: number;
  /** Viewers of recently checked credentials (a few seconds): most requests of a busy client skip the database. */
  readonly #cache: ViewerCache;
  /** Login attempts per login and per client address (none limited when not given). */
  readonly #limiter: LoginLimiter;

  constructor(
    orm: Orm,
    users: UsersService,
    bus: EventBus,
    sessionTtlMs: number,
    options: { viewerCacheTtlMs?: number; loginLimiter?: LoginLimiter } = {},
  ) {
    this.#orm = orm;
    this.#limiter = options.loginLimiter ?? LoginLimiter.inProcess({ attempts: 0, windowSeconds: 1 });
    this.#users = users;
    this.#bus = bus;
    this.#sessionTtlMs = sessionTtlMs;
    this.#cache = new ViewerCache(bus, options.viewerCacheTtlMs ?? VIEWER_CACHE_TTL_MS);
    // A cached viewer carries the user as it was read: a change to the account drops it.
    users.onUserChanged((userId) => this.#cache.forgetUser(userId));
  }

  /** Stops listening for account events (on shutdown). */
  close(): void {
    this.#cache.close();
  }

  /**
   * Checks the login and password and opens a session; the token goes into the session cookie.
   * TOO_MANY_REQUESTS, before the password is checked, when this login or `clientAddress` has used up
   * its attempts (the same for known and unknown logins).
   */
  async login(login: string, password: string, clientAddress: string | null = null): Promise<{ user: User; token: string; expiresAt: Date }> {
    const user = await this.#limiter.limit(login, clientAddress, () => this.#users.verifyCredentials(login, password));
    const { id, token, secretHash } = issueToken();
    const expiresAt = new Date(Date.now() + this.#sessionTtlMs);
    const em = this.#orm.em.fork();
    em.create(Session, { id, user: user.id, secretHash, expiresAt });
    await em.flush();
    this.#publish('SESSION_STARTED', user.id, id);
    return { user, token, expiresAt };
  }

  /** Ends the session behind this viewer. API tokens are revoked, not logged out. */
  async logout(viewer: Viewer): Promise<void> {
    if (viewer.credential.kind !== 'session') {
      throw new DomainError('INVALID_INPUT', 'Logging out ends a session; revoke an API token with revokeApiToken.');
    }
    await this.#orm.em.fork().nativeDelete(Session, { id: viewer.credential.id });
    // Dropped here before the answer; other instances drop theirs on the event.
    this.#cache.forgetCredential(viewer.user.id, viewer.credential.id);
    this.#publish('SESSION_ENDED', viewer.user.id, viewer.credential.id);
  }

  /**
   * The viewer a credential stands for, or a DomainError saying why it is refused. Served from the cache
   * when this process checked the same credential in the last few seconds; refusals are never cached.
   */
  async authenticate(credential: Credential): Promise<Viewer> {
    const key = this.#cache.key(credential);
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const mark = this.#cache.mark();
    const viewer = credential.kind === 'session' ? await this.#authenticateSession(credential.token) : await this.#authenticateApiToken(credential.token);
    this.#cache.store(key, viewer, mark);
    return viewer;
  }

  async createApiToken(userId: number, name: string, expiresInDays: number | null): Promise<{ apiToken: ApiToken; token: string }> {
    const trimmed = name.trim();
    if (trimmed === '' || trimmed.length > 100) {
      throw new DomainError('INVALID_INPUT', 'An API token needs a name of 1 to 100 characters.', 'name');
    }
    if (expiresInDays !== null && (!Number.isInteger(expiresInDays) || expiresInDays < 1 || expiresInDays > API_TOKEN_MAX_DAYS)) {
      throw new DomainError('INVALID_INPUT', `expiresInDays must be between 1 and ${API_TOKEN_MAX_DAYS}.`, 'expiresInDays');
    }
    const { id, token, secretHash } = issueToken(API_TOKEN_PREFIX);
    const em = this.#orm.em.fork();
    const apiToken = em.create(ApiToken, {
      id,
      user: userId,
      name: trimmed,
      secretHash,
      expiresAt: expiresInDays === null ? null : new Date(Date.now() + expiresInDays * 86_400_000),
    });
    await em.flush();
    this.#publish('API_TOKEN_CREATED', userId, id);
    return { apiToken, token };
  }

  async listApiTokens(userId: number, includeRevoked: boolean): Promise<ApiToken[]> {
    return this.#orm.em.fork().find(
      ApiToken,
      includeRevoked ? { user: userId } : { user: userId, revokedAt: null },
      { orderBy: { createdAt: 'desc', id: 'asc' } },
    );
  }

  /** Revokes one of the user's tokens; another user's token reads as missing. Revoking twice is harmless. */
  async revokeApiToken(userId: number, id: string): Promise<ApiToken> {
    const em = this.#orm.em.fork();
    const apiToken = await em.findOne(ApiToken, { id, user: userId });
    if (!apiToken) throw new DomainError('NOT_FOUND', 'No such API token.');
    if (!apiToken.revokedAt) {
      apiToken.revokedAt = new Date();
      await em.flush();
      // Dropped here before the answer; other instances drop theirs on the event.
      this.#cache.forgetCredential(userId, id);
      this.#publish('API_TOKEN_REVOKED', userId, id);
    }
    return apiToken;
  }

  async #authenticateSession(token: string): Promise<Viewer> {
    const parsed = parseToken(token);
    const em = this.#orm.em.fork();
    const session = parsed && (await em.findOne(Session, { id: parsed.id }, { populate: ['user'] }));
    if (!parsed || !session || !secretMatches(parsed.secret, session.secretHash)) throw new DomainError('SESSION_INVALID');
    if (session.expiresAt.getTime() <= Date.now()) {
      await em.nativeDelete(Session, { id: session.id });
      throw new DomainError('SESSION_EXPIRED');
    }
    return { user: session.user, credential: { kind: 'session', id: session.id, expiresAt: session.expiresAt } };
  }

  async #authenticateApiToken(token: string): Promise<Viewer> {
    const parsed = parseToken(token, API_TOKEN_PREFIX);
    const em = this.#orm.em.fork();
    const apiToken = parsed && (await em.findOne(ApiToken, { id: parsed.id }, { populate: ['user'] }));
    if (!parsed || !apiToken || !secretMatches(parsed.secret, apiToken.secretHash)) throw new DomainError('TOKEN_INVALID');
    if (apiToken.revokedAt) throw new DomainError('TOKEN_REVOKED');
    const now = Date.now();
    if (apiToken.expiresAt && apiToken.expiresAt.getTime() <= now) throw new DomainError('TOKEN_EXPIRED');
    if (!apiToken.lastUsedAt || now - apiToken.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      apiToken.lastUsedAt = new Date(now);
      await em.flush();
    }
    return { user: apiToken.user, credential: { kind: 'apiToken', id: apiToken.id, expiresAt: apiToken.expiresAt ?? null } };
  }

  #publish(kind: AccountEventKind, userId: number, subjectId: string): void {
    this.#bus.publish('account', String(userId), { kind, userId: String(userId), subjectId, at: new Date().toISOString() });
  }
}
