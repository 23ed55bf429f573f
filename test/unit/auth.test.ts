import { describe, expect, it } from 'vitest';
import { checkPasswordPolicy, hashPassword, verifyPassword } from '../../src/auth/passwords.ts';
import { hashSecret, issueToken, parseToken, secretMatches } from '../../src/auth/secrets.ts';
import { readCredential } from '../../src/http/context.ts';
import { DomainError } from '../../src/domain/errors.ts';

describe('tokens', () => {
  it('issues <prefix><id>.<secret> and keeps only the hash of the secret', () => {
    const { id, token, secretHash } = issueToken('dyt_');
    const parsed = parseToken(token, 'dyt_');
    expect(parsed?.id).toBe(id);
    expect(secretHash).toBe(hashSecret(parsed!.secret));
    expect(secretHash).not.toContain(parsed!.secret);
    expect(secretMatches(parsed!.secret, secretHash)).toBe(true);
    expect(secretMatches(`${parsed!.secret}x`, secretHash)).toBe(false);
  });

  it.each(['', 'nodot', 'a.b.c', '.secret', 'id.', 'dyt_missing'])('rejects the malformed token %j', (token) => {
    expect(parseToken(token)).toBeNull();
  });

  it('never issues the same token twice', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => issueToken().token));
    expect(tokens.size).toBe(1000);
  });
});

describe('passwords', () => {
  it('hashes with argon2id and verifies', async () => {
    const hash = await hashPassword('correct horse battery');
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(hash, 'correct horse battery')).toBe(true);
    expect(await verifyPassword(hash, 'correct horse batterY')).toBe(false);
  });

  it.each([
    ['', 'alice'],
    ['short', 'alice'],
    ['qwerty123', 'alice'],
    ['abababababab', 'alice'],
    ['alice-rocks-hard', 'alice'],
    ['x'.repeat(257), 'alice'],
  ])('refuses %j for login %s', (password, login) => {
    expect(() => checkPasswordPolicy(password, login, 8)).toThrow(DomainError);
  });

  it('accepts a passphrase, also one that merely contains a short login', () => {
    expect(() => checkPasswordPolicy('meadow horse staple', 'me', 8)).not.toThrow();
  });
});

describe('readCredential', () => {
  it('prefers the Authorization header over the cookie', () => {
    expect(readCredential({ authorization: 'Bearer dyt_a.b', cookie: 'dockyard_session=s.t' })).toEqual({ kind: 'apiToken', token: 'dyt_a.b' });
    expect(readCredential({ cookie: 'other=1; dockyard_session=s.t' })).toEqual({ kind: 'session', token: 's.t' });
    expect(readCredential({})).toBeNull();
  });

  it('turns a malformed Authorization header into TOKEN_INVALID', () => {
    for (const authorization of ['Basic abc', 'Bearer', 'Bearer session.token', 'dyt_a.b']) {
      expect(readCredential({ authorization })).toMatchObject({ code: 'TOKEN_INVALID' });
    }
  });
});
