// Password hashing (argon2id, OWASP's recommended parameters) and the password policy.
import { hash, verify } from '@node-rs/argon2';
import { DomainError } from '../domain/errors.ts';

// @node-rs/argon2 hashes with argon2id by default (its Algorithm enum is a const enum we cannot import here).
const PARAMS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** Longest accepted password: long enough for passphrases, short enough to bound hashing work. */
export const PASSWORD_MAX_LENGTH = 256;

const COMMON = new Set([
  'password', 'password1', 'password123', '12345678', '123456789', '1234567890', 'qwertyuiop',
  'qwerty123', 'iloveyou', 'sunshine', 'princess', 'football', 'baseball', 'welcome1', 'letmein1',
  'admin123', 'abc12345', 'passw0rd', 'trustno1', '11111111', '00000000', 'dragon123', 'monkey123',
]);

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

export function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  return verify(passwordHash, password, PARAMS);
}

/** Throws WEAK_PASSWORD unless the password meets the policy (NIST SP 800-63B: length, not a known-bad one). */
export function checkPasswordPolicy(password: string, login: string, minLength: number): void {
  const length = [...password].length;
  if (length === 0) throw new DomainError('WEAK_PASSWORD', 'The password must not be empty.', 'password');
  if (length < minLength) {
    throw new DomainError('WEAK_PASSWORD', `The password must have at least ${minLength} characters.`, 'password');
  }
  if (length > PASSWORD_MAX_LENGTH) {
    throw new DomainError('WEAK_PASSWORD', `The password must have at most ${PASSWORD_MAX_LENGTH} characters.`, 'password');
  }
  const lower = password.toLowerCase();
  if (COMMON.has(lower) || new Set(lower).size < 3 || containsLogin(lower, login.toLowerCase())) {
    throw new DomainError('WEAK_PASSWORD', 'The password is too easy to guess.', 'password');
  }
}

function containsLogin(password: string, login: string): boolean {
  return login !== '' && (password === login || (login.length >= 4 && password.includes(login)));
}
