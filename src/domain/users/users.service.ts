// Accounts: registration, confirmation, and checking a login and password.
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { Orm } from '../../db/orm.ts';
import { DomainError } from '../errors.ts';
import { checkPasswordPolicy, hashPassword, verifyPassword } from '../../auth/passwords.ts';
import { hashSecret, randomString, secretMatches } from '../../auth/secrets.ts';
import { User } from './user.entity.ts';

export interface UsersSettings {
  confirmationTtlMs: number;
  allowUnconfirmedLogin: boolean;
  passwordMinLength: number;
}

export interface RegisterInput {
  login: string;
  password: string;
  email: string;
}

const LOGIN_PATTERN = /^[a-z0-9][a-z0-9_.-]{1,39}$/;
// Pragmatic: one @, no spaces, a dot in the domain.
const EMAIL_PATTERN = /^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)+$/;

export class UsersService {
  readonly #orm: Orm;
  readonly #settings: UsersSettings;
  /** Verified against when the login is unknown, so both failures take as long. */
  readonly #dummyHash: Promise<string>;
  readonly #changeListeners: ((userId: number) => void)[] = [];

  constructor(orm: Orm, settings: UsersSettings) {
    this.#orm = orm;
    this.#settings = settings;
    this.#dummyHash = hashPassword(randomString());
  }

  /** Calls `listener` after an account changed (AuthService drops the viewers it cached of it). */
  onUserChanged(listener: (userId: number) => void): void {
    this.#changeListeners.push(listener);
  }

  /** Creates an unconfirmed account and returns the token that confirms it (shown once). */
  async register(input: RegisterInput): Promise<{ user: User; confirmationToken: string }> {
    const login = normaliseLogin(input.login);
    const email = normaliseEmail(input.email);
    checkPasswordPolicy(input.password, login, this.#settings.passwordMinLength);

    const em = this.#orm.em.fork();
    // An unconfirmed registration whose token expired no longer holds its login and email.
    await em.nativeDelete(User, { $or: [{ login }, { email }], confirmedAt: null, confirmationExpiresAt: { $lt: new Date() } });
    // Friendly answers for the common case; the unique constraints below settle races.
    const taken = await em.findOne(User, { $or: [{ login }, { email }] });
    if (taken) throw takenError(taken.login === login ? 'users_login_unique' : 'users_email_unique');

    const confirmationToken = randomString(20);
    const user = em.create(User, {
      login,
      email,
      passwordHash: await hashPassword(input.password),
      confirmationHash: hashSecret(confirmationToken),
      confirmationExpiresAt: new Date(Date.now() + this.#settings.confirmationTtlMs),
    });
    try {
      await em.flush();
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) {
        throw takenError((error as { constraint?: string }).constraint);
      }
      throw error;
    }
    return { user, confirmationToken };
  }

  /** Confirms the account. Repeating a successful confirmation with the same token succeeds again. */
  async confirm(loginInput: string, token: string): Promise<User> {
    const em = this.#orm.em.fork();
    const user = await em.findOne(User, { login: loginKey(loginInput) });
    // An unknown login and a wrong token get the same answer.
    if (!user || token === '' || !secretMatches(token, user.confirmationHash)) {
      throw new DomainError('INVALID_CONFIRMATION_TOKEN');
    }
    if (user.confirmedAt) return user;
    if (user.confirmationExpiresAt.getTime() < Date.now()) throw new DomainError('CONFIRMATION_TOKEN_EXPIRED');
    user.confirmedAt = new Date();
    await em.flush();
    for (const listener of this.#changeListeners) listener(user.id);
    return user;
  }

  /** The account these credentials belong to; INVALID_CREDENTIALS for an unknown login or a wrong password alike. */
  async verifyCredentials(loginInput: string, password: string): Promise<User> {
    const em = this.#orm.em.fork();
    const user = await em.findOne(User, { login: loginKey(loginInput) });
    const valid = await verifyPassword(user?.passwordHash ?? (await this.#dummyHash), password);
    if (!user || !valid) throw new DomainError('INVALID_CREDENTIALS');
    if (!user.confirmedAt && !this.#settings.allowUnconfirmedLogin) throw new DomainError('ACCOUNT_NOT_CONFIRMED');
    return user;
  }
}

/** Logins are stored lower-case and compared that way (and counted that way by the login rate limit). */
export function loginKey(raw: string): string {
  return raw.trim().toLowerCase();
}

function normaliseLogin(raw: string): string {
  const login = loginKey(raw);
  if (login === '') throw new DomainError('INVALID_LOGIN', 'The login must not be empty.', 'login');
  if (!LOGIN_PATTERN.test(login)) {
    throw new DomainError(
      'INVALID_LOGIN',
      'A login has 2 to 40 characters: letters, digits, ".", "_" or "-", starting with a letter or digit.',
      'login',
    );
  }
  return login;
}

function normaliseEmail(raw: string): string {
  const email = raw.trim().toLowerCase();
  if (email.length > 254 || !EMAIL_PATTERN.test(email)) {
    throw new DomainError('INVALID_EMAIL', `"${raw.slice(0, 100)}" is not a valid email address.`, 'email');
  }
  return email;
}

function takenError(constraint: string | undefined): DomainError {
  return constraint === 'users_email_unique'
    ? new DomainError('EMAIL_TAKEN', undefined, 'email')
    : new DomainError('LOGIN_TAKEN', undefined, 'login');
}
