// Secrets handed to clients (session tokens, API tokens, confirmation tokens), following the model
// Lucia's authors teach: a token is "<id>.<secret>"; the database keeps the id in the clear and only
// a SHA-256 hash of the secret, compared in constant time. A leaked table leaks no usable token.
import { constantTimeEqual } from '@oslojs/crypto/subtle';
import { sha256 } from '@oslojs/crypto/sha2';
import { decodeHex, encodeBase32LowerCaseNoPadding, encodeHexLowerCase } from '@oslojs/encoding';
import { randomBytes } from 'node:crypto';

/** 120 bits of randomness in base32 (24 characters). */
export function randomString(bytes = 15): string {
  return encodeBase32LowerCaseNoPadding(randomBytes(bytes));
}

/** SHA-256 of the secret, as 64 lower-case hex characters (what the database stores). */
export function hashSecret(secret: string): string {
  return encodeHexLowerCase(sha256(new TextEncoder().encode(secret)));
}

export function secretMatches(secret: string, storedHash: string): boolean {
  return constantTimeEqual(decodeHex(hashSecret(secret)), decodeHex(storedHash));
}

export interface IssuedToken {
  id: string;
  /** What the client keeps: `<prefix><id>.<secret>`. Shown once. */
  token: string;
  secretHash: string;
}

export function issueToken(prefix = ''): IssuedToken {
  const id = randomString();
  const secret = randomString(20);
  return { id, token: `${prefix}${id}.${secret}`, secretHash: hashSecret(secret) };
}

/** Splits `<prefix><id>.<secret>`; null when the shape is wrong. */
export function parseToken(token: string, prefix = ''): { id: string; secret: string } | null {
  if (!token.startsWith(prefix)) return null;
  const [id, secret, ...rest] = token.slice(prefix.length).split('.');
  if (!id || !secret || rest.length > 0 || id.length > 64 || secret.length > 64) return null;
  return { id, secret };
}
