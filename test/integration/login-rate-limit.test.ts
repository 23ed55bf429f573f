// The login rate limit against real servers: GraphQL and Kabuto's POST /login, counted in the real Redis
// (shared by two instances), in the process without Redis, and in the process while Redis is down.
// Attempts come "through a proxy" (TRUST_PROXY, X-Forwarded-For) from made-up addresses, because every
// test process logs in from 127.0.0.1 and Redis's per-address counts are shared by all of them. Each
// X-Forwarded-For also starts with a fixed, client-written entry: were it used, these tests would all
// share one address and fail.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfirmAccountDocument, LoginDocument } from '../generated/graphql.ts';
import { PASSWORD, registerUser } from '../support/accounts.ts';
import { errorCodes, GraphqlClient, type GraphqlResult } from '../support/graphql-client.ts';
import { startTestServer, uniqueLogin, type TestServer } from '../support/server.ts';
import { freePort, waitForPort } from '../support/ports.ts';

const LIMIT = 10;
const WINDOW_SECONDS = 60;
const proxied = { TRUST_PROXY: 'true', LOGIN_RATE_LIMIT: String(LIMIT), LOGIN_RATE_WINDOW_SECONDS: String(WINDOW_SECONDS) };
const first = await startTestServer(proxied);
const second = await startTestServer(proxied);

/** A made-up client address (198.18.0.0/15, for benchmarks), different for each call of this run. */
let next = Math.floor(Math.random() * 100_000);
function freshAddress(): string {
  const n = next++ % 2 ** 17;
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
}

async function login(server: TestServer, name: string, password: string, address: string): Promise<GraphqlResult<{ login: { user: { login: string } } }>> {
  const client = new GraphqlClient(server.graphqlUrl);
  client.headers['x-forwarded-for'] = `203.0.113.66, ${address}`;
  return client.request(LoginDocument, { login: name, password });
}

async function confirmedUser(server: TestServer): Promise<string> {
  const { login: name, token } = await registerUser(server.graphqlUrl, 'rl');
  expect((await new GraphqlClient(server.graphqlUrl).request(ConfirmAccountDocument, { login: name, token })).errors).toBeUndefined();
  return name;
}

function expectInvalid(result: GraphqlResult<unknown>): void {
  expect(result.response.status).toBe(200);
  expect(errorCodes(result)).toEqual(['INVALID_CREDENTIALS']);
}

function expectLoggedIn(result: GraphqlResult<{ login: { user: { login: string } } }>, name: string): void {
  expect(result.errors).toBeUndefined();
  expect(result.data!.login.user.login).toBe(name);
  expect(result.response.headers.getSetCookie()).toHaveLength(1);
}

/** 429, TOO_MANY_REQUESTS, Retry-After (also in the extensions, never the transport hints), no cookie. */
function expectRefused(result: GraphqlResult<unknown>, windowSeconds = WINDOW_SECONDS): number {
  expect(result.response.status).toBe(429);
  expect(errorCodes(result)).toEqual(['TOO_MANY_REQUESTS']);
  const retryAfter = Number(result.response.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(result.errors![0]!.extensions).toEqual({ code: 'TOO_MANY_REQUESTS', retryAfterSeconds: retryAfter });
  expect(result.errors![0]!.message).toBe('Too many login attempts. Try again later.');
  expect(result.data).toBeNull();
  expect(result.response.headers.getSetCookie()).toEqual([]);
  return retryAfter;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('GraphQL login, counted in Redis', () => {
  it('refuses the 11th attempt from one address with 429 and Retry-After; other addresses are unaffected', async () => {
    const [name, other] = await Promise.all([confirmedUser(first), confirmedUser(first)]);
    const address = freshAddress();
    for (let i = 0; i < LIMIT; i++) expectInvalid(await login(first, uniqueLogin('nobody'), 'wrong password', address));
    // The right password does not help: this address has used its attempts, and the password is not checked.
    expectRefused(await login(first, name, PASSWORD, address));
    expectRefused(await login(second, other, PASSWORD, address));
    // From elsewhere, both log in: the failures were another login's.
    expectLoggedIn(await login(first, name, PASSWORD, freshAddress()), name);
    expectLoggedIn(await login(second, other, PASSWORD, freshAddress()), other);
  });

  it('counts failures per login from any address and on any instance, and answers an unknown login exactly alike', async () => {
    const known = await confirmedUser(first);
    const unknown = uniqueLogin('ghost');
    for (let i = 0; i < LIMIT; i++) {
      const server = i % 2 === 0 ? first : second;
      const wrong = await login(server, known, 'wrong password', freshAddress());
      const ghost = await login(server, unknown, 'wrong password', freshAddress());
      expectInvalid(wrong);
      expect(ghost.errors).toEqual(wrong.errors);
    }
    const knownRefused = await login(first, known, PASSWORD, freshAddress());
    const unknownRefused = await login(second, unknown, PASSWORD, freshAddress());
    const knownWait = expectRefused(knownRefused);
    const unknownWait = expectRefused(unknownRefused);
    // The same answer; only the wait may differ by a second (the two windows began milliseconds apart).
    expect(Math.abs(knownWait - unknownWait)).toBeLessThanOrEqual(1);
    const sameWait = (result: GraphqlResult<unknown>) => ({
      data: result.data,
      errors: result.errors!.map((e) => ({ ...e, extensions: { ...e.extensions, retryAfterSeconds: 0 } })),
      type: result.response.headers.get('content-type'),
    });
    expect(sameWait(unknownRefused)).toEqual(sameWait(knownRefused));

    // Another login from another address is unaffected.
    const other = await confirmedUser(second);
    expectLoggedIn(await login(second, other, PASSWORD, freshAddress()), other);
  });

  it('does not count successful logins against their login', async () => {
    const name = await confirmedUser(first);
    for (let i = 0; i < LIMIT + 2; i++) expectLoggedIn(await login(i % 2 === 0 ? first : second, name, PASSWORD, freshAddress()), name);
  });

  it('lets attempts through again once the window has passed', async () => {
    const server = await startTestServer({ TRUST_PROXY: 'true', LOGIN_RATE_LIMIT: '3', LOGIN_RATE_WINDOW_SECONDS: '3' });
    const name = await confirmedUser(server);
    const address = freshAddress();
    for (let i = 0; i < 3; i++) expectInvalid(await login(server, name, 'wrong password', address));
    const wait = expectRefused(await login(server, name, PASSWORD, address), 3);
    await sleep(wait * 1000 + 100);
    expectLoggedIn(await login(server, name, PASSWORD, address), name);
  });
});

describe("Kabuto's POST /login", () => {
  const post = (name: string, password: string, address: string) =>
    fetch(`${first.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': `203.0.113.66, ${address}` },
      body: new URLSearchParams({ login: name, password }),
    });
  const unauthorized = { status: 401, message: 'Unauthorized' };
  const tooMany = { status: 429, message: 'Too many login attempts. Try again later.' };

  it("answers 429 in Kabuto's shape with Retry-After, per login and per address, alike for unknown logins", async () => {
    const [known, other] = await Promise.all([confirmedUser(first), confirmedUser(first)]);
    const unknown = uniqueLogin('ghost');
    for (let i = 0; i < LIMIT; i++) {
      for (const name of [known, unknown]) {
        const answer = await post(name, 'wrong password', freshAddress());
        expect([answer.status, await answer.json()]).toEqual([401, unauthorized]);
      }
    }
    for (const name of [known, unknown]) {
      const answer = await post(name, PASSWORD, freshAddress());
      expect([answer.status, await answer.json()]).toEqual([429, tooMany]);
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(answer.headers.get('retry-after'))).toBeLessThanOrEqual(WINDOW_SECONDS);
      expect(answer.headers.getSetCookie()).toEqual([]);
    }

    const address = freshAddress();
    for (let i = 0; i < LIMIT; i++) expect((await post(uniqueLogin('nobody'), 'wrong password', address)).status).toBe(401);
    const refused = await post(other, PASSWORD, address);
    expect([refused.status, await refused.json()]).toEqual([429, tooMany]);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);

    const ok = await post(other, PASSWORD, freshAddress());
    expect([ok.status, await ok.json()]).toEqual([200, { login: 'success' }]);
    expect(ok.headers.getSetCookie()).toHaveLength(1);
  });
});

describe('without Redis, or while it is down', () => {
  it('counts in the process, by the connection address when the proxy is not trusted', async () => {
    const server = await startTestServer({ REDIS_URL: undefined, LOGIN_RATE_LIMIT: '3' });
    const name = await confirmedUser(server);
    // X-Forwarded-For is not trusted: all of these come from 127.0.0.1.
    for (let i = 0; i < 3; i++) expectInvalid(await login(server, uniqueLogin('nobody'), 'wrong password', freshAddress()));
    expectRefused(await login(server, name, PASSWORD, freshAddress()));
    const ready = await (await fetch(`${server.url}/readyz`)).json();
    expect(ready.checks.redis.detail).toMatch(/not configured/);
  });

  it('falls back to counting in the process when Redis goes away, rather than refusing logins', async () => {
    const port = await freePort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    try {
      await waitForPort(port);
      const server = await startTestServer({ REDIS_URL: `redis://127.0.0.1:${port}`, TRUST_PROXY: 'true', LOGIN_RATE_LIMIT: '3' });
      const name = await confirmedUser(server);
      const address = freshAddress();
      expectInvalid(await login(server, name, 'wrong password', address));

      redis.kill('SIGKILL');
      await new Promise((resolve) => redis.once('exit', resolve));
      // What Redis counted is gone with it: the process starts afresh.
      for (let i = 0; i < 3; i++) expectInvalid(await login(server, uniqueLogin('nobody'), 'wrong password', address));
      expectRefused(await login(server, name, PASSWORD, address));
      expectLoggedIn(await login(server, name, PASSWORD, freshAddress()), name);
    } finally {
      redis.kill('SIGKILL');
    }
  });
});
