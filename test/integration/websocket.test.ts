// The same account flows over graphql-ws: credentials from the upgrade's cookie or from
// connectionParams, the Origin allowlist for cookies, errors, limits, and live account events.
import { describe, expect, it } from 'vitest';
import {
  AccountEventsDocument,
  ApiTokensDocument,
  ConfirmAccountDocument,
  CreateApiTokenDocument,
  LoginDocument,
  LogoutDocument,
  MeDocument,
  RegisterDocument,
  RevokeApiTokenDocument,
} from '../generated/graphql.ts';
import { errorCodes, GraphqlClient } from '../support/graphql-client.ts';
import { loggedInUser, PASSWORD } from '../support/accounts.ts';
import { startTestServer, uniqueLogin } from '../support/server.ts';
import { connectWs, execute, subscribe } from '../support/ws-client.ts';
import { testDatabase } from '../support/db.ts';
import WebSocket from 'ws';

const server = await startTestServer({ PUBLIC_URL: 'http://dockyard.example.test', ALLOWED_ORIGINS: 'http://console.example.test' });
const db = testDatabase();

/** Logs the user in once more over HTTP: a new session, as a cookie header. */
async function loginAgain(login: string): Promise<string> {
  const client = new GraphqlClient(server.graphqlUrl);
  expect((await client.request(LoginDocument, { login, password: PASSWORD })).errors).toBeUndefined();
  return client.cookieHeader!;
}

describe('accounts over graphql-ws', () => {
  it('registers, confirms, logs in, manages tokens and logs out over one socket each', async () => {
    const login = uniqueLogin('ws');
    const anonymous = connectWs(server.wsUrl).client;
    const registered = await execute(anonymous, RegisterDocument, { login, password: PASSWORD, email: `${login}@example.test` });
    const token = registered.data!.register.confirmationToken;
    expect((await execute(anonymous, ConfirmAccountDocument, { login, token })).data!.confirmAccount.confirmed).toBe(true);
    // No cookie can be set over a WebSocket, so no session is made there.
    expect(errorCodes(await execute(anonymous, LoginDocument, { login, password: PASSWORD }))).toEqual(['INVALID_INPUT']);
    await anonymous.dispose();

    // A session made over HTTP, presented as the upgrade request's cookie.
    const { client: http } = await loggedInUser(server.graphqlUrl);
    const { client: ws, closed } = connectWs(server.wsUrl, { cookie: http.cookieHeader });
    const events = subscribe(ws, AccountEventsDocument); // keeps the (lazy) socket open
    const me = await execute(ws, MeDocument);
    expect(me.data!.me.login).toMatch(/^u-/);
    const created = await execute(ws, CreateApiTokenDocument, { name: 'from ws' });
    const { apiToken } = created.data!.createApiToken;
    expect((await execute(ws, ApiTokensDocument, {})).data!.apiTokens.map((t) => t.id)).toEqual([apiToken.id]);
    expect((await execute(ws, RevokeApiTokenDocument, { id: apiToken.id })).data!.revokeApiToken.revokedAt).not.toBeNull();
    expect((await execute(ws, LogoutDocument)).data!.logout).toBe(true);
    // The socket's own session ended: the socket closes, and the cookie no longer opens anything.
    expect(await closed).toEqual({ code: 4401, reason: 'Session ended' });
    await events.stop().catch(() => {});
    const again = connectWs(server.wsUrl, { cookie: http.cookieHeader }).client;
    expect(errorCodes(await execute(again, MeDocument))).toEqual(['SESSION_INVALID']);
    await again.dispose();
  });

  it('authenticates with a bearer API token in connectionParams', async () => {
    const { client, login } = await loggedInUser(server.graphqlUrl);
    const { token } = (await client.request(CreateApiTokenDocument, { name: 'ws' })).data!.createApiToken;
    const ws = connectWs(server.wsUrl, { connectionParams: { authorization: `Bearer ${token}` } }).client;
    expect((await execute(ws, MeDocument)).data!.me.login).toBe(login);
    await ws.dispose();
  });

  it('says why a credential is refused: revoked token, expired session, none at all', async () => {
    const { client, userId, login } = await loggedInUser(server.graphqlUrl);
    const { token, apiToken } = (await client.request(CreateApiTokenDocument, { name: 'doomed' })).data!.createApiToken;
    await client.request(RevokeApiTokenDocument, { id: apiToken.id });
    const revoked = connectWs(server.wsUrl, { connectionParams: { authorization: `Bearer ${token}` } }).client;
    expect(errorCodes(await execute(revoked, MeDocument))).toEqual(['TOKEN_REVOKED']);
    await revoked.dispose();

    // A session that has not been checked yet (a checked one is cached for a few seconds, and this
    // expiry is written behind the service's back).
    const fresh = await loginAgain(login);
    await db.query(`update sessions set expires_at = now() - interval '1 second' where user_id = $1`, [userId]);
    const expired = connectWs(server.wsUrl, { cookie: fresh }).client;
    expect(errorCodes(await execute(expired, MeDocument))).toEqual(['SESSION_EXPIRED']);
    await expired.dispose();

    const anonymous = connectWs(server.wsUrl).client;
    expect(errorCodes(await execute(anonymous, MeDocument))).toEqual(['UNAUTHENTICATED']);
    const denied = subscribe(anonymous, AccountEventsDocument);
    expect(errorCodes(await denied.next())).toEqual(['UNAUTHENTICATED']);
    // The socket survives a refused operation.
    expect(errorCodes(await execute(anonymous, MeDocument))).toEqual(['UNAUTHENTICATED']);
    await anonymous.dispose();
  });
});

describe('account errors over graphql-ws', () => {
  it('gives the same codes as over HTTP', async () => {
    const { login, client } = await loggedInUser(server.graphqlUrl);
    const ws = connectWs(server.wsUrl).client;
    const register = (variables: { login: string; password: string; email: string }) => execute(ws, RegisterDocument, variables);
    expect(errorCodes(await register({ login, password: PASSWORD, email: `x-${login}@example.test` }))).toEqual(['LOGIN_TAKEN']);
    expect(errorCodes(await register({ login: uniqueLogin(), password: '', email: 'e@example.test' }))).toEqual(['WEAK_PASSWORD']);
    expect(errorCodes(await register({ login: uniqueLogin(), password: PASSWORD, email: 'nope' }))).toEqual(['INVALID_EMAIL']);
    expect(errorCodes(await register({ login: '!', password: PASSWORD, email: 'e@example.test' }))).toEqual(['INVALID_LOGIN']);
    expect(errorCodes(await execute(ws, ConfirmAccountDocument, { login, token: 'wrong' }))).toEqual(['INVALID_CONFIRMATION_TOKEN']);
    expect(errorCodes(await execute(ws, CreateApiTokenDocument, { name: 'x' }))).toEqual(['UNAUTHENTICATED']);
    const { email } = (await client.request(MeDocument)).data!.me;
    expect(errorCodes(await register({ login: uniqueLogin(), password: PASSWORD, email }))).toEqual(['EMAIL_TAKEN']);
    await ws.dispose();
  });
});

describe('sockets whose credential ends', () => {
  it('closes with 4401 when the API token is revoked', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const { token, apiToken } = (await client.request(CreateApiTokenDocument, { name: 'revoked while open' })).data!.createApiToken;
    const { client: ws, closed } = connectWs(server.wsUrl, { connectionParams: { authorization: `Bearer ${token}` } });
    const events = subscribe(ws, AccountEventsDocument);
    expect((await execute(ws, MeDocument)).errors).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 300)); // the server's watch is listening on Redis by now
    await client.request(RevokeApiTokenDocument, { id: apiToken.id });
    expect(await closed).toEqual({ code: 4401, reason: 'API token revoked' });
    await expect(events.next()).rejects.toBeDefined();
  });

  it('closes with 4401 when the session logs out (on any connection)', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const { client: ws, closed } = connectWs(server.wsUrl, { cookie: client.cookieHeader });
    subscribe(ws, AccountEventsDocument); // keeps the (lazy) socket open
    expect((await execute(ws, MeDocument)).errors).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await client.request(LogoutDocument);
    expect(await closed).toEqual({ code: 4401, reason: 'Session ended' });
  });

  it('closes with 4401 when the session expires', async () => {
    const { client, userId } = await loggedInUser(server.graphqlUrl);
    await db.query(`update sessions set expires_at = now() + interval '1 second' where user_id = $1`, [userId]);
    const { client: ws, closed } = connectWs(server.wsUrl, { cookie: client.cookieHeader });
    subscribe(ws, AccountEventsDocument); // keeps the (lazy) socket open
    expect((await execute(ws, MeDocument)).errors).toBeUndefined();
    expect(await closed).toEqual({ code: 4401, reason: 'Session expired' });
  });
});

describe('Origin allowlist on the upgrade', () => {
  it('refuses a cookie-carrying upgrade from another site with 403', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws', { headers: { cookie: client.cookieHeader! }, origin: 'https://evil.example.test' });
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode!));
      socket.on('open', () => reject(new Error('the upgrade was accepted')));
      socket.on('error', () => {});
    });
    expect(status).toBe(403);
  });

  it.each([
    ['the public URL', 'http://dockyard.example.test'],
    ['ALLOWED_ORIGINS', 'http://console.example.test'],
    ['the same origin', undefined],
  ])('accepts the cookie from %s', async (_name, origin) => {
    const { client, login } = await loggedInUser(server.graphqlUrl);
    const ws = connectWs(server.wsUrl, { cookie: client.cookieHeader, origin: origin ?? new URL(server.url).origin }).client;
    expect((await execute(ws, MeDocument)).data!.me.login).toBe(login);
    await ws.dispose();
  });

  it('accepts a token from any origin: it is not an ambient credential', async () => {
    const { client, login } = await loggedInUser(server.graphqlUrl);
    const { token } = (await client.request(CreateApiTokenDocument, { name: 'any origin' })).data!.createApiToken;
    const ws = connectWs(server.wsUrl, { origin: 'https://elsewhere.example.test', connectionParams: { authorization: `Bearer ${token}` } }).client;
    expect((await execute(ws, MeDocument)).data!.me.login).toBe(login);
    await ws.dispose();
  });
});

describe('accountEvents', () => {
  it('delivers token and session events of the account, and none of another account', async () => {
    const alice = await loggedInUser(server.graphqlUrl, 'alice');
    const bob = await loggedInUser(server.graphqlUrl, 'bob');
    const ws = connectWs(server.wsUrl, { cookie: alice.client.cookieHeader }).client;
    const events = subscribe(ws, AccountEventsDocument);
    // Pub/sub keeps nothing for a subscriber that is not yet listening: repeat until the first event arrives.
    let first;
    for (let attempt = 0; !first && attempt < 20; attempt++) {
      await bob.client.request(CreateApiTokenDocument, { name: `bob ${attempt}` });
      await alice.client.request(CreateApiTokenDocument, { name: `warm-up ${attempt}` });
      first = await events.next(250).catch(() => undefined);
    }
    expect(first!.data!.accountEvents.kind).toBe('API_TOKEN_CREATED');

    const { apiToken } = (await alice.client.request(CreateApiTokenDocument, { name: 'watched' })).data!.createApiToken;
    await bob.client.request(CreateApiTokenDocument, { name: 'not for alice' });
    await alice.client.request(RevokeApiTokenDocument, { id: apiToken.id });
    // Warm-up events may still be on their way; the watched token's two events follow them, in order.
    let created = await events.next();
    while (created.data!.accountEvents.subjectId !== apiToken.id) created = await events.next();
    const revoked = await events.next();
    expect(created.data!.accountEvents).toMatchObject({ kind: 'API_TOKEN_CREATED', subjectId: apiToken.id });
    expect(revoked.data!.accountEvents).toMatchObject({ kind: 'API_TOKEN_REVOKED', subjectId: apiToken.id });
    await events.stop();
    await ws.dispose();
  });
});
