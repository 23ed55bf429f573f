// Accounts over GraphQL on HTTP: register, confirm, login, me, logout, and every error they can give.
import { describe, expect, it } from 'vitest';
import { ConfirmAccountDocument, LoginDocument, LogoutDocument, MeDocument, RegisterDocument } from '../generated/graphql.ts';
import { errorCodes, GraphqlClient } from '../support/graphql-client.ts';
import { loggedInUser, PASSWORD, registerUser } from '../support/accounts.ts';
import { startTestServer, uniqueLogin } from '../support/server.ts';
import { testDatabase } from '../support/db.ts';

const server = await startTestServer();
const db = testDatabase();
const anonymous = () => new GraphqlClient(server.graphqlUrl);

describe('register', () => {
  it('creates an unconfirmed account and returns a confirmation token', async () => {
    const login = uniqueLogin('Reg');
    const result = await anonymous().request(RegisterDocument, { login, password: PASSWORD, email: `${login}@Example.test` });
    expect(result.errors).toBeUndefined();
    const { user, confirmationToken } = result.data!.register;
    expect(user).toMatchObject({ login: login.toLowerCase(), email: `${login.toLowerCase()}@example.test`, confirmed: false });
    expect(confirmationToken).toMatch(/^[a-z2-7]{32}$/);
  });

  it('stores the password as an argon2id hash and the confirmation token hashed', async () => {
    const { login, token } = await registerUser(server.graphqlUrl);
    const { rows } = await db.query('select password_hash, confirmation_hash from users where login = $1', [login]);
    expect(rows[0].password_hash).toMatch(/^\$argon2id\$/);
    expect(rows[0].password_hash).not.toContain(PASSWORD);
    expect(rows[0].confirmation_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].confirmation_hash).not.toContain(token);
  });

  it('refuses a login that is taken, whatever its case', async () => {
    const { login } = await registerUser(server.graphqlUrl);
    const again = await anonymous().request(RegisterDocument, { login: login.toUpperCase(), password: PASSWORD, email: `other-${login}@example.test` });
    expect(errorCodes(again)).toEqual(['LOGIN_TAKEN']);
    expect(again.errors![0]!.extensions!.field).toBe('login');
  });

  it('refuses an email that is taken', async () => {
    const { email } = await registerUser(server.graphqlUrl);
    const again = await anonymous().request(RegisterDocument, { login: uniqueLogin(), password: PASSWORD, email });
    expect(errorCodes(again)).toEqual(['EMAIL_TAKEN']);
  });

  it('frees the login and email of a registration whose confirmation expired', async () => {
    const { login, email } = await registerUser(server.graphqlUrl);
    await db.query(`update users set confirmation_expires_at = now() - interval '1 second' where login = $1`, [login]);
    const again = await anonymous().request(RegisterDocument, { login, password: PASSWORD, email });
    expect(again.errors).toBeUndefined();
    expect(again.data!.register.user.login).toBe(login);
  });

  it('settles a race for the same login with exactly one account', async () => {
    const login = uniqueLogin('race');
    const attempts = await Promise.all(
      [1, 2, 3].map((i) => anonymous().request(RegisterDocument, { login, password: PASSWORD, email: `${login}-${i}@example.test` })),
    );
    expect(attempts.filter((a) => a.errors === undefined)).toHaveLength(1);
    expect(attempts.flatMap((a) => errorCodes(a))).toEqual(['LOGIN_TAKEN', 'LOGIN_TAKEN']);
  });

  it.each([
    ['', 'The password must not be empty.'],
    ['short', 'The password must have at least 8 characters.'],
    ['password123', 'The password is too easy to guess.'],
    ['aaaaaaaaaaaa', 'The password is too easy to guess.'],
  ])('refuses the weak password %j', async (password, message) => {
    const result = await anonymous().request(RegisterDocument, { login: uniqueLogin(), password, email: 'weak@example.test' });
    expect(errorCodes(result)).toEqual(['WEAK_PASSWORD']);
    expect(result.errors![0]!.message).toBe(message);
  });

  it.each(['', 'no-at-sign', 'two@@example.test', 'spaces in@example.test', 'nodot@localhost'])('refuses the email %j', async (email) => {
    const result = await anonymous().request(RegisterDocument, { login: uniqueLogin(), password: PASSWORD, email });
    expect(errorCodes(result)).toEqual(['INVALID_EMAIL']);
  });

  it.each(['', 'x', '-leading-dash', 'has space', 'a'.repeat(41), 'semi;colon'])('refuses the login %j', async (login) => {
    const result = await anonymous().request(RegisterDocument, { login, password: PASSWORD, email: 'login@example.test' });
    expect(errorCodes(result)).toEqual(['INVALID_LOGIN']);
  });
});

describe('confirmAccount', () => {
  it('confirms with the token, and again with the same token', async () => {
    const { login, token } = await registerUser(server.graphqlUrl);
    const first = await anonymous().request(ConfirmAccountDocument, { login, token });
    expect(first.data!.confirmAccount).toMatchObject({ login, confirmed: true });
    const second = await anonymous().request(ConfirmAccountDocument, { login, token });
    expect(second.data!.confirmAccount.confirmed).toBe(true);
  });

  it('gives the same answer for a wrong token and an unknown login', async () => {
    const { login, token } = await registerUser(server.graphqlUrl);
    const wrong = await anonymous().request(ConfirmAccountDocument, { login, token: `${token.slice(0, -1)}${token.endsWith('a') ? 'b' : 'a'}` });
    const unknown = await anonymous().request(ConfirmAccountDocument, { login: uniqueLogin('nobody'), token });
    expect(errorCodes(wrong)).toEqual(['INVALID_CONFIRMATION_TOKEN']);
    expect(unknown.errors).toEqual(wrong.errors);
  });

  it('refuses an expired token', async () => {
    const { login, token } = await registerUser(server.graphqlUrl);
    await db.query(`update users set confirmation_expires_at = now() - interval '1 second' where login = $1`, [login]);
    const result = await anonymous().request(ConfirmAccountDocument, { login, token });
    expect(errorCodes(result)).toEqual(['CONFIRMATION_TOKEN_EXPIRED']);
  });
});

describe('login, me and logout', () => {
  it('sets an HttpOnly, SameSite=Lax session cookie that identifies the user, not Secure over http', async () => {
    const { login, token } = await registerUser(server.graphqlUrl);
    const client = anonymous();
    await client.request(ConfirmAccountDocument, { login, token });
    const result = await client.request(LoginDocument, { login, password: PASSWORD });
    expect(result.data!.login.user.login).toBe(login);
    const [cookie] = result.response.headers.getSetCookie();
    expect(cookie).toMatch(/^dockyard_session=[a-z2-7]+\.[a-z2-7]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    const me = await client.request(MeDocument);
    expect(me.data!.me).toMatchObject({ login, confirmed: true });
  });

  it('stores sessions hashed: the cookie secret is nowhere in the database', async () => {
    const { client, userId } = await loggedInUser(server.graphqlUrl);
    const secret = client.cookies.get('dockyard_session')!.split('.')[1]!;
    const { rows } = await db.query('select id, secret_hash from sessions where user_id = $1', [userId]);
    expect(rows).toHaveLength(1);
    expect(rows[0].secret_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(rows)).not.toContain(secret);
  });

  it('gives the same answer for a wrong password and an unknown login', async () => {
    const { client, login } = await loggedInUser(server.graphqlUrl);
    const wrong = await client.request(LoginDocument, { login, password: 'not the password' });
    const unknown = await client.request(LoginDocument, { login: uniqueLogin('ghost'), password: PASSWORD });
    expect(errorCodes(wrong)).toEqual(['INVALID_CREDENTIALS']);
    expect(unknown.errors).toEqual(wrong.errors);
    expect(wrong.response.headers.getSetCookie()).toEqual([]);
  });

  it('refuses an unconfirmed account by default', async () => {
    const { login } = await registerUser(server.graphqlUrl);
    const result = await anonymous().request(LoginDocument, { login, password: PASSWORD });
    expect(errorCodes(result)).toEqual(['ACCOUNT_NOT_CONFIRMED']);
  });

  it('lets an unconfirmed account log in when ALLOW_UNCONFIRMED_LOGIN is on', async () => {
    const lenient = await startTestServer({ ALLOW_UNCONFIRMED_LOGIN: 'true' });
    const { login, token } = await registerUser(lenient.graphqlUrl);
    const client = new GraphqlClient(lenient.graphqlUrl);
    const result = await client.request(LoginDocument, { login, password: PASSWORD });
    expect(result.errors).toBeUndefined();
    expect((await client.request(MeDocument)).data!.me.confirmed).toBe(false);
    // The viewer is cached now (the second check of a credential is); confirming changes the account, which drops it.
    expect((await client.request(MeDocument)).data!.me.confirmed).toBe(false);
    await new GraphqlClient(lenient.graphqlUrl).request(ConfirmAccountDocument, { login, token });
    expect((await client.request(MeDocument)).data!.me.confirmed).toBe(true);
  });

  it('needs a user for me', async () => {
    const result = await anonymous().request(MeDocument);
    expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
    expect(result.data).toBeNull();
  });

  it('ends the session on logout: the cookie is cleared and the old token is refused', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const stolen = client.cookieHeader!;
    const result = await client.request(LogoutDocument);
    expect(result.data!.logout).toBe(true);
    expect(result.response.headers.getSetCookie()[0]).toMatch(/^dockyard_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Lax$/);
    expect(errorCodes(await client.request(MeDocument))).toEqual(['UNAUTHENTICATED']);
    const replay = await anonymous().raw({ query: '{ me { id } }' }, { cookie: stolen });
    expect(errorCodes(replay)).toEqual(['SESSION_INVALID']);
  });

  it('refuses a logged-out session at once, even right after it was checked and cached', async () => {
    const { client, userId } = await loggedInUser(server.graphqlUrl);
    const stolen = client.cookieHeader!;
    for (let i = 0; i < 2; i++) expect((await client.request(MeDocument)).errors).toBeUndefined();
    // Served from the cache: an expiry written behind the service's back is not seen for a few seconds.
    await db.query(`update sessions set expires_at = now() - interval '1 second' where user_id = $1`, [userId]);
    expect((await client.request(MeDocument)).errors).toBeUndefined();
    expect((await client.request(LogoutDocument)).data!.logout).toBe(true);
    expect(errorCodes(await anonymous().raw({ query: '{ me { id } }' }, { cookie: stolen }))).toEqual(['SESSION_INVALID']);
  });

  it('refuses an expired session with SESSION_EXPIRED', async () => {
    const { client, userId } = await loggedInUser(server.graphqlUrl);
    await db.query(`update sessions set expires_at = now() - interval '1 second' where user_id = $1`, [userId]);
    expect(errorCodes(await client.request(MeDocument))).toEqual(['SESSION_EXPIRED']);
  });

  it('refuses a forged session cookie', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const [id] = client.cookies.get('dockyard_session')!.split('.');
    const forged = await anonymous().raw({ query: '{ me { id } }' }, { cookie: `dockyard_session=${id}.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa` });
    expect(errorCodes(forged)).toEqual(['SESSION_INVALID']);
  });

  it('marks the cookie Secure behind a trusted proxy that says https, and only then', async () => {
    const proxied = await startTestServer({ TRUST_PROXY: 'true' });
    const { login, token } = await registerUser(proxied.graphqlUrl);
    const client = new GraphqlClient(proxied.graphqlUrl);
    await client.request(ConfirmAccountDocument, { login, token });
    const overHttps = await client.raw({ query: `mutation { login(login: "${login}", password: "${PASSWORD}") { expiresAt } }` }, { 'x-forwarded-proto': 'https' });
    expect(overHttps.response.headers.getSetCookie()[0]).toMatch(/; Secure$/);
    // The same request to a server that does not trust proxies: the header is ignored.
    const direct = await anonymous().raw({ query: `mutation { login(login: "${login}", password: "${PASSWORD}") { expiresAt } }` }, { 'x-forwarded-proto': 'https' });
    expect(direct.errors).toBeUndefined();
    expect(direct.response.headers.getSetCookie()[0]).not.toMatch(/Secure/);
  });

  it('marks the cookie Secure when the public URL is https', async () => {
    const secure = await startTestServer({ PUBLIC_URL: 'https://dockyard.example.test' });
    const { login, token } = await registerUser(secure.graphqlUrl);
    const client = new GraphqlClient(secure.graphqlUrl);
    await client.request(ConfirmAccountDocument, { login, token });
    const result = await client.request(LoginDocument, { login, password: PASSWORD });
    expect(result.response.headers.getSetCookie()[0]).toMatch(/; HttpOnly; SameSite=Lax; Secure$/);
  });
});
