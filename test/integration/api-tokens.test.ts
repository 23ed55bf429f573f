// API tokens over GraphQL on HTTP: create (secret once), list, use as Bearer, revoke, expire.
import { describe, expect, it } from 'vitest';
import { ApiTokensDocument, CreateApiTokenDocument, LogoutDocument, MeDocument, RevokeApiTokenDocument } from '../generated/graphql.ts';
import { errorCodes, GraphqlClient } from '../support/graphql-client.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startTestServer } from '../support/server.ts';
import { testDatabase } from '../support/db.ts';

const server = await startTestServer();
const db = testDatabase();

function bearerClient(token: string): GraphqlClient {
  const client = new GraphqlClient(server.graphqlUrl);
  client.bearer = token;
  return client;
}

describe('API tokens', () => {
  it('shows the secret once, stores only its hash, and authenticates as Bearer', async () => {
    const { client, login, userId } = await loggedInUser(server.graphqlUrl);
    const created = await client.request(CreateApiTokenDocument, { name: 'ci' });
    expect(created.errors).toBeUndefined();
    const { token, apiToken } = created.data!.createApiToken;
    expect(token).toMatch(/^dyt_[a-z2-7]+\.[a-z2-7]+$/);
    expect(apiToken).toMatchObject({ name: 'ci', expiresAt: null, lastUsedAt: null, revokedAt: null });

    const { rows } = await db.query('select * from api_tokens where user_id = $1', [userId]);
    expect(JSON.stringify(rows)).not.toContain(token.split('.')[1]);

    const me = await bearerClient(token).request(MeDocument);
    expect(me.data!.me.login).toBe(login);
    const listed = await client.request(ApiTokensDocument, {});
    expect(listed.data!.apiTokens).toEqual([{ id: apiToken.id, name: 'ci', revokedAt: null, lastUsedAt: expect.any(String) }]);
    expect(JSON.stringify(listed.data)).not.toContain(token.split('.')[1]);
  });

  it('works without a session: a token can manage tokens, but cannot log out', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const { token } = (await client.request(CreateApiTokenDocument, { name: 'script' })).data!.createApiToken;
    const script = bearerClient(token);
    const second = await script.request(CreateApiTokenDocument, { name: 'made by script', expiresInDays: 7 });
    expect(second.data!.createApiToken.apiToken.expiresAt).not.toBeNull();
    expect(errorCodes(await script.request(LogoutDocument))).toEqual(['INVALID_INPUT']);
  });

  it('refuses a revoked token with TOKEN_REVOKED, and lists it only on request', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const { token, apiToken } = (await client.request(CreateApiTokenDocument, { name: 'old' })).data!.createApiToken;
    const revoked = await client.request(RevokeApiTokenDocument, { id: apiToken.id });
    expect(revoked.data!.revokeApiToken.revokedAt).not.toBeNull();
    expect(errorCodes(await bearerClient(token).request(MeDocument))).toEqual(['TOKEN_REVOKED']);
    expect((await client.request(ApiTokensDocument, {})).data!.apiTokens).toEqual([]);
    expect((await client.request(ApiTokensDocument, { includeRevoked: true })).data!.apiTokens).toHaveLength(1);
  });

  // A checked credential is cached per process for a few seconds. The tests below first make sure the
  // token is served from the cache: its expiry is moved into the past behind the service's back, which
  // only a cached check does not see.
  async function cachedToken(client: GraphqlClient, userId: string, on: GraphqlClient[]): Promise<{ token: string; id: string }> {
    const { token, apiToken } = (await client.request(CreateApiTokenDocument, { name: 'cached' })).data!.createApiToken;
    for (const instance of on) {
      instance.bearer = token;
      // The first check subscribes to the account's events, the second is kept.
      for (let i = 0; i < 2; i++) expect((await instance.request(MeDocument)).data!.me.id).toBe(userId);
    }
    await db.query(`update api_tokens set expires_at = now() - interval '1 second' where id = $1`, [apiToken.id]);
    for (const instance of on) expect((await instance.request(MeDocument)).errors).toBeUndefined();
    return { token, id: apiToken.id };
  }

  it('refuses a revoked token at once, even right after it was checked and cached', async () => {
    const { client, userId } = await loggedInUser(server.graphqlUrl);
    const script = new GraphqlClient(server.graphqlUrl);
    const { id } = await cachedToken(client, userId, [script]);
    await client.request(RevokeApiTokenDocument, { id });
    expect(errorCodes(await script.request(MeDocument))).toEqual(['TOKEN_REVOKED']);
  });

  it('refuses a token revoked on another instance as soon as the event arrives, long before the cache would lapse', async () => {
    const other = await startTestServer();
    const { client, userId } = await loggedInUser(server.graphqlUrl);
    const script = new GraphqlClient(other.graphqlUrl);
    const { id } = await cachedToken(client, userId, [script]);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the other instance's subscription is listening on Redis by now
    await client.request(RevokeApiTokenDocument, { id });
    const revokedAt = Date.now();
    let codes = errorCodes(await script.request(MeDocument));
    while (codes.length === 0 && Date.now() - revokedAt < 5000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      codes = errorCodes(await script.request(MeDocument));
    }
    expect(codes).toEqual(['TOKEN_REVOKED']);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });

  it('refuses an expired token with TOKEN_EXPIRED', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const { token, apiToken } = (await client.request(CreateApiTokenDocument, { name: 'short', expiresInDays: 1 })).data!.createApiToken;
    await db.query(`update api_tokens set expires_at = now() - interval '1 second' where id = $1`, [apiToken.id]);
    expect(errorCodes(await bearerClient(token).request(MeDocument))).toEqual(['TOKEN_EXPIRED']);
  });

  it('refuses unknown, forged and malformed bearer tokens with TOKEN_INVALID', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const { token } = (await client.request(CreateApiTokenDocument, { name: 'real' })).data!.createApiToken;
    const forged = `${token.split('.')[0]}.${'a'.repeat(32)}`;
    for (const bad of [forged, 'dyt_nothing.here', 'not-a-token']) {
      expect(errorCodes(await bearerClient(bad).request(MeDocument))).toEqual(['TOKEN_INVALID']);
    }
    const basic = await new GraphqlClient(server.graphqlUrl).raw({ query: '{ me { id } }' }, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(errorCodes(basic)).toEqual(['TOKEN_INVALID']);
  });

  it("reads another user's token as missing", async () => {
    const alice = await loggedInUser(server.graphqlUrl, 'alice');
    const bob = await loggedInUser(server.graphqlUrl, 'bob');
    const { token, apiToken } = (await alice.client.request(CreateApiTokenDocument, { name: 'alice' })).data!.createApiToken;
    const stolen = await bob.client.request(RevokeApiTokenDocument, { id: apiToken.id });
    const missing = await bob.client.request(RevokeApiTokenDocument, { id: 'doesnotexist' });
    expect(errorCodes(stolen)).toEqual(['NOT_FOUND']);
    expect(stolen.errors![0]!.message).toBe(missing.errors![0]!.message);
    expect((await bearerClient(token).request(MeDocument)).data!.me.login).toBe(alice.login);
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: 'x'.repeat(101) }, 'name'],
    [{ name: 'ok', expiresInDays: 0 }, 'expiresInDays'],
  ])('refuses bad input %j', async (variables, field) => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const result = await client.request(CreateApiTokenDocument, variables);
    expect(errorCodes(result)).toEqual(['INVALID_INPUT']);
    expect(result.errors![0]!.extensions!.field).toBe(field);
  });

  it('needs a user to create, list or revoke', async () => {
    const anonymous = new GraphqlClient(server.graphqlUrl);
    expect(errorCodes(await anonymous.request(CreateApiTokenDocument, { name: 'x' }))).toEqual(['UNAUTHENTICATED']);
    expect(errorCodes(await anonymous.request(ApiTokensDocument, {}))).toEqual(['UNAUTHENTICATED']);
    expect(errorCodes(await anonymous.request(RevokeApiTokenDocument, { id: 'x' }))).toEqual(['UNAUTHENTICATED']);
  });
});
