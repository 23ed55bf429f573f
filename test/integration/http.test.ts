// The HTTP surface around GraphQL: health probes, CSRF prevention, CORS, cookie origins,
// operation limits and production mode.
import { describe, expect, it } from 'vitest';
import { errorCodes, GraphqlClient } from '../support/graphql-client.ts';
import { loggedInUser } from '../support/accounts.ts';
import { startTestServer } from '../support/server.ts';

const server = await startTestServer({ ALLOWED_ORIGINS: 'http://console.example.test' });
const production = await startTestServer({ NODE_ENV: 'production' });

describe('health', () => {
  it('/healthz says the process is alive', async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/readyz reports the database, Redis and the Docker engine separately', async () => {
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toEqual({
      status: 'ready',
      checks: {
        database: { ok: true, detail: 'postgresql' },
        redis: { ok: true, detail: 'redis://127.0.0.1:6379' },
        docker: { ok: true, detail: expect.stringMatching(/^docker \d+\.\d+/) },
      },
    });
  });

  it('/readyz is 503 and names the failing dependency when the engine is unreachable', async () => {
    const broken = await startTestServer({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    const response = await fetch(`${broken.url}/readyz`);
    expect(response.status).toBe(503);
    const body = await response.json();
    expect(body.status).toBe('not ready');
    expect(body.checks.docker).toEqual({ ok: false, detail: expect.stringContaining('ENOENT') });
    expect(body.checks.database.ok).toBe(true);
    expect(body.checks.redis.ok).toBe(true);
  });
});

describe('cross-site request protection', () => {
  it('refuses a GET query and form or multipart posts without the CSRF header', async () => {
    const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent('{ __typename }')}`);
    expect(get.status).toBe(403);
    const form = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'query={__typename}',
    });
    expect(form.status).toBe(403);
    const multipart = new FormData();
    multipart.set('operations', JSON.stringify({ query: '{ __typename }' }));
    expect((await fetch(server.graphqlUrl, { method: 'POST', body: multipart })).status).toBe(403);
  });

  it('accepts a GET query with the CSRF header, and JSON posts', async () => {
    const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent('{ __typename }')}`, {
      headers: { 'x-graphql-yoga-csrf': '1' },
    });
    expect(await get.json()).toEqual({ data: { __typename: 'Query' } });
    expect((await new GraphqlClient(server.graphqlUrl).raw({ query: '{ __typename }' })).data).toEqual({ __typename: 'Query' });
  });

  it('allows credentialed CORS only for allowed origins', async () => {
    const preflight = (origin: string) =>
      fetch(server.graphqlUrl, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    const allowed = await preflight('http://console.example.test');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://console.example.test');
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    const evil = await preflight('https://evil.example.test');
    expect(evil.headers.get('access-control-allow-origin')).not.toBe('https://evil.example.test');
  });

  it('ignores the session cookie when a request comes from a foreign origin', async () => {
    const { client } = await loggedInUser(server.graphqlUrl);
    const fromEvil = await client.raw({ query: '{ me { id } }' }, { origin: 'https://evil.example.test' });
    expect(errorCodes(fromEvil)).toEqual(['ORIGIN_NOT_ALLOWED']);
    const fromConsole = await client.raw({ query: '{ me { id } }' }, { origin: 'http://console.example.test' });
    expect(fromConsole.errors).toBeUndefined();
  });
});

describe('operation limits', () => {
  /** A client of a server with one limit lowered (the others at their defaults). */
  const clientWith = async (env: Record<string, string>) => new GraphqlClient((await startTestServer(env)).graphqlUrl);

  it('refuses an operation deeper than GRAPHQL_MAX_DEPTH', async () => {
    const client = await clientWith({ GRAPHQL_MAX_DEPTH: '2' });
    const result = await client.raw({ query: 'mutation { createApiToken(name: "x") { apiToken { id } } }' });
    expect(errorCodes(result)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(result.errors![0]!.message).toMatch(/depth limit of 2/);
    expect(errorCodes(await client.raw({ query: '{ me { id } }' }))).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses more aliases than GRAPHQL_MAX_ALIASES', async () => {
    const client = await clientWith({ GRAPHQL_MAX_ALIASES: '3' });
    const result = await client.raw({ query: '{ a: me { id } b: me { id } c: me { id } d: me { id } }' });
    expect(errorCodes(result)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(result.errors![0]!.message).toMatch(/Aliases limit of 3/);
  });

  it('refuses an operation costing more than GRAPHQL_MAX_COST', async () => {
    const client = await clientWith({ GRAPHQL_MAX_COST: '5' });
    const result = await client.raw({ query: '{ me { id login email confirmed createdAt } }' });
    expect(errorCodes(result)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(result.errors![0]!.message).toMatch(/Query Cost limit of 5/);
    expect(errorCodes(await client.raw({ query: '{ me { id } }' }))).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses more directives than GRAPHQL_MAX_DIRECTIVES', async () => {
    const client = await clientWith({ GRAPHQL_MAX_DIRECTIVES: '2' });
    const result = await client.raw({ query: '{ __typename @include(if: true) @skip(if: false) @include(if: true) }' });
    expect(errorCodes(result)).toContain('QUERY_TOO_COMPLEX');
    expect(result.errors!.map((e) => e.message).join()).toMatch(/Directives limit of 2/);
  });

  it('refuses a document with more tokens than GRAPHQL_MAX_TOKENS', async () => {
    const client = await clientWith({ GRAPHQL_MAX_TOKENS: '200' });
    const result = await client.raw({ query: `{ ${'__typename '.repeat(250)} }` });
    expect(errorCodes(result)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(result.errors![0]!.message).toMatch(/Token limit of 200/);
    expect(result.data).toBeUndefined();
  });
});

describe('production mode', () => {

  it('turns introspection and GraphiQL off', async () => {
    const result = await new GraphqlClient(production.graphqlUrl).raw({ query: '{ __schema { queryType { name } } }' });
    expect(errorCodes(result)).toEqual(['INTROSPECTION_DISABLED']);
    const page = await fetch(production.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toContain('<html');
  });

  it('serves GraphiQL with WebSocket subscriptions in development', async () => {
    const development = await startTestServer({ NODE_ENV: 'development' });
    const page = await fetch(development.graphqlUrl, { headers: { accept: 'text/html' } });
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('<title>Dockyard</title>');
    expect(html).toMatch(/"subscriptionsProtocol":"WS"/);
  });
});
